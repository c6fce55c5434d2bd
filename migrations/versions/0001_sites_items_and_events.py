"""sites, items and events

Revision ID: 0001
Revises: 
Create Date: 2026-11-27 08:26:16.088139
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sites',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('allowed_origins', sa.JSON(), nullable=False),
    sa.Column('publishable_key', sa.String(length=64), nullable=False),
    sa.Column('secret_key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sites')),
    sa.UniqueConstraint('name', name=op.f('uq_sites_name')),
    sa.UniqueConstraint('publishable_key', name=op.f('uq_sites_publishable_key')),
    sa.UniqueConstraint('secret_key_hash', name=op.f('uq_sites_secret_key_hash'))
    )
    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('session', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('item', sa.String(length=256), nullable=True),
    sa.Column('rec', sa.String(length=64), nullable=True),
    sa.Column('items', sa.JSON(), nullable=True),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('client_ms', sa.BigInteger(), nullable=True),
    sa.Column('received_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_events_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_rec', ['rec'], unique=False)
        batch_op.create_index('ix_events_received', ['received_ms'], unique=False)
        batch_op.create_index('ix_events_site_session', ['site_id', 'session', 'received_ms'], unique=False)
        batch_op.create_index('ix_events_site_type_session', ['site_id', 'type', 'session', 'client_ms'], unique=False)

    op.create_table('items',
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.String(length=256), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('image', sa.Text(), nullable=True),
    sa.Column('price', sa.Float(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('category', sa.String(length=256), nullable=True),
    sa.Column('available', sa.Boolean(), nullable=False),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.Column('updated_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_items_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('site_id', 'id', name=op.f('pk_items'))
    )
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.create_index('ix_items_site_updated', ['site_id', 'updated_ms'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_site_updated')

    op.drop_table('items')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_site_type_session')
        batch_op.drop_index('ix_events_site_session')
        batch_op.drop_index('ix_events_received')
        batch_op.drop_index('ix_events_rec')

    op.drop_table('events')
    op.drop_table('sites')
