"""tuning_studies, tuning_trials: hyperparameter searches kept in the store so they can resume (issue 14)

Revision ID: 0006
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tuning_studies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_tuning_studies_site_id_sites'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tuning_studies')),
    sa.UniqueConstraint('name', name=op.f('uq_tuning_studies_name'))
    )
    op.create_table('tuning_trials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('finished_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['tuning_studies.id'], name=op.f('fk_tuning_trials_study_id_tuning_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tuning_trials')),
    sa.UniqueConstraint('study_id', 'number', name=op.f('uq_tuning_trials_study_id'))
    )


def downgrade() -> None:
    op.drop_table('tuning_trials')
    op.drop_table('tuning_studies')
