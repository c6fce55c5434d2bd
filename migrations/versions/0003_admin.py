"""admin: sessions, login throttling, settings overrides, training runs and schedules

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 10:01:34
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('admin_credentials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=True),
    sa.Column('setup_code_hash', sa.String(length=64), nullable=True),
    sa.Column('secret', sa.String(length=64), nullable=False),
    sa.Column('updated_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_credentials'))
    )
    op.create_table('admin_login_failures',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('at_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_login_failures'))
    )
    with op.batch_alter_table('admin_login_failures', schema=None) as batch_op:
        batch_op.create_index('ix_admin_login_failures_at', ['at_ms'], unique=False)
        batch_op.create_index('ix_admin_login_failures_client_at', ['client', 'at_ms'], unique=False)

    op.create_table('admin_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('last_seen_ms', sa.BigInteger(), nullable=False),
    sa.Column('expires_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_admin_sessions'))
    )
    op.create_table('app_settings',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('updated_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_app_settings'))
    )
    op.create_table('training_schedules',
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('every_hours', sa.Float(), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('next_run_ms', sa.BigInteger(), nullable=False),
    sa.Column('last_run_id', sa.Integer(), nullable=True),
    sa.Column('updated_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_training_schedules_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('site_id', name=op.f('pk_training_schedules'))
    )
    op.create_table('training_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('gate', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('phase', sa.String(length=32), nullable=False),
    sa.Column('progress', sa.JSON(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('log_path', sa.Text(), nullable=True),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('started_ms', sa.BigInteger(), nullable=True),
    sa.Column('heartbeat_ms', sa.BigInteger(), nullable=True),
    sa.Column('finished_ms', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_training_runs_model_id_models'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_training_runs_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_runs'))
    )
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.create_index('ix_training_runs_site_created', ['site_id', 'created_ms'], unique=False)
        batch_op.create_index('ix_training_runs_status', ['status'], unique=False)
        batch_op.create_index('uq_training_runs_active_site', ['site_id'], unique=True,
                              sqlite_where=sa.text("status IN ('queued', 'running')"),
                              postgresql_where=sa.text("status IN ('queued', 'running')"))



def downgrade() -> None:
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.drop_index('uq_training_runs_active_site')
        batch_op.drop_index('ix_training_runs_status')
        batch_op.drop_index('ix_training_runs_site_created')

    op.drop_table('training_runs')
    op.drop_table('training_schedules')
    op.drop_table('app_settings')
    op.drop_table('admin_sessions')
    with op.batch_alter_table('admin_login_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_admin_login_failures_client_at')
        batch_op.drop_index('ix_admin_login_failures_at')

    op.drop_table('admin_login_failures')
    op.drop_table('admin_credentials')
