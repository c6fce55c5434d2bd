"""placements: diversity, max_per_category, pinned, blocked and rules (issue 17)

Revision ID: 0008
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('placements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('diversity', sa.Float(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('max_per_category', sa.Integer(), nullable=True))
        for name in ('pinned', 'blocked', 'rules'):
            batch_op.add_column(sa.Column(name, sa.JSON(), server_default='[]', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('placements', schema=None) as batch_op:
        for name in ('rules', 'blocked', 'pinned', 'max_per_category', 'diversity'):
            batch_op.drop_column(name)
