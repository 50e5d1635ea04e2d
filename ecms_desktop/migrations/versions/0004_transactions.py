"""transactions: sales lines, filing periods, determinations, adjustments, exemption-status outbox

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-23
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import ecms_desktop.models.base

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('delivery_attempt',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('connector_kind', sa.String(length=10), nullable=False),
    sa.Column('connector_id', sa.Integer(), nullable=False),
    sa.Column('first_event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('last_event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('files', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('attempted_at', ecms_desktop.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_attempt'))
    )
    op.create_index('ix_delivery_attempt_connector', 'delivery_attempt', ['connector_kind', 'connector_id', 'id'], unique=False)
    op.create_table('feed_folder',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('formats', sa.String(length=20), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('delivered_through', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_feed_folder_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_folder')),
    sa.UniqueConstraint('company_id', 'name', name=op.f('uq_feed_folder_company_id_name'))
    )
    op.create_table('filed_period',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=2), nullable=False),
    sa.Column('period', sa.String(length=10), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('filed_by', sa.String(length=100), nullable=False),
    sa.Column('filed_at', ecms_desktop.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_filed_period_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_filed_period')),
    sa.UniqueConstraint('company_id', 'state', 'start_date', name=op.f('uq_filed_period_company_id_state_start_date'))
    )
    op.create_table('filing_period_config',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=2), nullable=False),
    sa.Column('frequency', sa.String(length=10), nullable=False),
    sa.Column('changed_by', sa.String(length=100), nullable=False),
    sa.Column('changed_at', ecms_desktop.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("frequency IN ('monthly', 'quarterly', 'annual')", name=op.f('ck_filing_period_config_frequency')),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_filing_period_config_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_filing_period_config')),
    sa.UniqueConstraint('company_id', 'state', name=op.f('uq_filing_period_config_company_id_state'))
    )
    op.create_table('transaction_line',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('invoice_number', sa.String(length=64), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('invoice_date', sa.Date(), nullable=False),
    sa.Column('customer_number', sa.String(length=64), nullable=False),
    sa.Column('customer_key', sa.String(length=64), nullable=False),
    sa.Column('ship_to_state', sa.String(length=2), nullable=False),
    sa.Column('ship_to_county', sa.String(length=100), nullable=False),
    sa.Column('ship_to_city', sa.String(length=100), nullable=False),
    sa.Column('ship_to_zip', sa.String(length=20), nullable=False),
    sa.Column('product_code', sa.String(length=64), nullable=False),
    sa.Column('commodity_code', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('tax_collected', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('exempt_claimed', sa.Boolean(), nullable=False),
    sa.Column('exempt_reason', sa.String(length=20), nullable=False),
    sa.Column('po_number', sa.String(length=64), nullable=False),
    sa.Column('imported_at', ecms_desktop.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_transaction_line_company_id_company'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transaction_line')),
    sa.UniqueConstraint('company_id', 'invoice_number', 'line', name=op.f('uq_transaction_line_company_id_invoice_number_line'))
    )
    op.create_index('ix_transaction_line_company_customer', 'transaction_line', ['company_id', 'customer_key', 'invoice_date'], unique=False)
    op.create_index('ix_transaction_line_company_date', 'transaction_line', ['company_id', 'invoice_date'], unique=False)
    op.create_table('webhook_endpoint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('secret_ref', sa.String(length=200), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('delivered_through', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('next_attempt_at', ecms_desktop.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_webhook_endpoint_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoint')),
    sa.UniqueConstraint('company_id', 'name', name=op.f('uq_webhook_endpoint_company_id_name'))
    )
    op.create_table('determination',
    sa.Column('transaction_line_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('exempt', sa.Boolean(), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=True),
    sa.Column('certificate_number', sa.String(length=64), nullable=False),
    sa.Column('certificate_version', sa.Integer(), nullable=True),
    sa.Column('coverage_line_id', sa.Integer(), nullable=True),
    sa.Column('coverage_state', sa.String(length=2), nullable=False),
    sa.Column('coverage_expiry', sa.Date(), nullable=True),
    sa.Column('certificate_status', sa.String(length=20), nullable=False),
    sa.Column('rules_pack_version', sa.String(length=40), nullable=False),
    sa.Column('exempt_amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('taxable_amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('also_eligible', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('conflict', sa.Boolean(), nullable=False),
    sa.Column('explanation', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('exposure_kind', sa.String(length=20), nullable=False),
    sa.Column('exposure_amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('origin', sa.String(length=20), nullable=False),
    sa.Column('determined_at', ecms_desktop.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificate.id'], name=op.f('fk_determination_certificate_id_certificate'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_determination_company_id_company'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['transaction_line_id'], ['transaction_line.id'], name=op.f('fk_determination_transaction_line_id_transaction_line'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('transaction_line_id', name=op.f('pk_determination'))
    )
    op.create_index('ix_determination_certificate', 'determination', ['certificate_id'], unique=False)
    op.create_index('ix_determination_company_exposure', 'determination', ['company_id', 'exposure_kind'], unique=False)
    op.create_table('determination_adjustment',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('transaction_line_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('state', sa.String(length=2), nullable=False),
    sa.Column('period', sa.String(length=10), nullable=False),
    sa.Column('posted_on', sa.Date(), nullable=False),
    sa.Column('exempt', sa.Boolean(), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=True),
    sa.Column('certificate_number', sa.String(length=64), nullable=False),
    sa.Column('certificate_version', sa.Integer(), nullable=True),
    sa.Column('coverage_line_id', sa.Integer(), nullable=True),
    sa.Column('coverage_expiry', sa.Date(), nullable=True),
    sa.Column('certificate_status', sa.String(length=20), nullable=False),
    sa.Column('rules_pack_version', sa.String(length=40), nullable=False),
    sa.Column('exempt_amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('taxable_amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('explanation', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', ecms_desktop.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('negation', 'recreation')", name=op.f('ck_determination_adjustment_kind')),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificate.id'], name=op.f('fk_determination_adjustment_certificate_id_certificate'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_determination_adjustment_company_id_company'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['transaction_line_id'], ['transaction_line.id'], name=op.f('fk_determination_adjustment_transaction_line_id_transaction_line'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_determination_adjustment'))
    )
    op.create_index('ix_determination_adjustment_line', 'determination_adjustment', ['transaction_line_id', 'id'], unique=False)
    op.create_table('exemption_status_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('customer_number', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=2), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=True),
    sa.Column('certificate_number', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('old_status', sa.String(length=20), nullable=False),
    sa.Column('new_status', sa.String(length=20), nullable=False),
    sa.Column('customer_exempt', sa.Boolean(), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', ecms_desktop.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificate.id'], name=op.f('fk_exemption_status_event_certificate_id_certificate'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_exemption_status_event_company_id_company'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_exemption_status_event_customer_id_customer'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exemption_status_event')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_exemption_status_event_idempotency_key'))
    )
    op.create_index('ix_exemption_status_event_certificate', 'exemption_status_event', ['certificate_id', 'state', 'reason'], unique=False)
    op.create_index(op.f('ix_exemption_status_event_company_id'), 'exemption_status_event', ['company_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_exemption_status_event_company_id'), table_name='exemption_status_event')
    op.drop_index('ix_exemption_status_event_certificate', table_name='exemption_status_event')
    op.drop_table('exemption_status_event')
    op.drop_index('ix_determination_adjustment_line', table_name='determination_adjustment')
    op.drop_table('determination_adjustment')
    op.drop_index('ix_determination_company_exposure', table_name='determination')
    op.drop_index('ix_determination_certificate', table_name='determination')
    op.drop_table('determination')
    op.drop_table('webhook_endpoint')
    op.drop_index('ix_transaction_line_company_date', table_name='transaction_line')
    op.drop_index('ix_transaction_line_company_customer', table_name='transaction_line')
    op.drop_table('transaction_line')
    op.drop_table('filing_period_config')
    op.drop_table('filed_period')
    op.drop_table('feed_folder')
    op.drop_index('ix_delivery_attempt_connector', table_name='delivery_attempt')
    op.drop_table('delivery_attempt')
