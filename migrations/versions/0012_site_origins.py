"""site_origins: where a site's requests came from (script, events, recommendations, refused) for the install
check (issue 18)

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'site_origins',
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('origin', sa.String(length=200), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.Column('first_ms', sa.BigInteger(), nullable=False),
        sa.Column('last_ms', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_site_origins_site_id_sites'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('site_id', 'kind', 'origin', name=op.f('pk_site_origins')),
    )


def downgrade() -> None:
    op.drop_table('site_origins')
