"""placements, models, served lists

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 08:43:05.396260
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('promoted_ms', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_models_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_models'))
    )
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.create_index('ix_models_site_created', ['site_id', 'created_ms'], unique=False)

    op.create_table('placements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('page_kind', sa.String(length=16), nullable=False),
    sa.Column('algorithm', sa.String(length=24), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('exclude_seen', sa.Boolean(), nullable=False),
    sa.Column('only_available', sa.Boolean(), nullable=False),
    sa.Column('same_category', sa.Boolean(), nullable=False),
    sa.Column('fallback', sa.JSON(), nullable=False),
    sa.Column('updated_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_placements_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_placements')),
    sa.UniqueConstraint('site_id', 'name', name=op.f('uq_placements_site_id'))
    )
    op.create_table('served_lists',
    sa.Column('rec', sa.String(length=64), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('session', sa.String(length=64), nullable=True),
    sa.Column('placement', sa.String(length=64), nullable=False),
    sa.Column('algorithm', sa.String(length=24), nullable=False),
    sa.Column('arm', sa.String(length=32), nullable=True),
    sa.Column('fallback', sa.String(length=64), nullable=True),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('served_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_served_lists_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('rec', name=op.f('pk_served_lists'))
    )
    with op.batch_alter_table('served_lists', schema=None) as batch_op:
        batch_op.create_index('ix_served_lists_site_served', ['site_id', 'served_ms'], unique=False)
        batch_op.create_index('ix_served_lists_site_session', ['site_id', 'session'], unique=False)

    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.add_column(sa.Column('catalog_version', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('live_model_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_sites_live_model_id_models', 'models', ['live_model_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.drop_constraint('fk_sites_live_model_id_models', type_='foreignkey')
        batch_op.drop_column('live_model_id')
        batch_op.drop_column('catalog_version')

    with op.batch_alter_table('served_lists', schema=None) as batch_op:
        batch_op.drop_index('ix_served_lists_site_session')
        batch_op.drop_index('ix_served_lists_site_served')

    op.drop_table('served_lists')
    op.drop_table('placements')
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.drop_index('ix_models_site_created')

    op.drop_table('models')
