"""experiments (A/B tests per placement) and the experiment of each served list

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    op.create_table('experiments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('placement', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('salt', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('arms', sa.JSON(), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('started_ms', sa.BigInteger(), nullable=True),
    sa.Column('stopped_ms', sa.BigInteger(), nullable=True),
    sa.Column('updated_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_experiments_site_id_sites'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_experiments'))
    )
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.create_index('ix_experiments_site_placement', ['site_id', 'placement'], unique=False)
        # at most one running experiment per placement, enforced by the database itself
        batch_op.create_index('uq_experiments_one_running', ['site_id', 'placement'], unique=True,
                              sqlite_where=RUNNING, postgresql_where=RUNNING)

    with op.batch_alter_table('served_lists', schema=None) as batch_op:
        batch_op.add_column(sa.Column('experiment_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_served_lists_experiment', ['experiment_id', 'session'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('served_lists', schema=None) as batch_op:
        batch_op.drop_index('ix_served_lists_experiment')
        batch_op.drop_column('experiment_id')

    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.drop_index('uq_experiments_one_running')
        batch_op.drop_index('ix_experiments_site_placement')

    op.drop_table('experiments')
