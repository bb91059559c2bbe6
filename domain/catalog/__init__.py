"""The catalog service: merchants, stores, programs, rewards, campaigns and staff, with one
validation.

``loyalty provision`` (``domain.provisioning``) and the admin panel's forms both go through
it, so they accept the same values, refuse them with the same sentences and write the same
rows (a program switched on gets its ``activated_at`` either way).

- ``schema``: the pydantic models of each kind (the provisioning file is built from them);
- ``checks``: form-shaped data to validated values (``merchant_values``, ``store_values``,
  ``program_change``, ``campaign_values``), the rules spanning several fields
  (``reward_rules``, ``campaign_rules``, ``expiry_rules``, ``tier_rules``);
- ``writes``: creating and updating the rows, with what only the database can refuse;
- ``errors``: ``FieldError`` and its sentences, ``InvalidFields``, ``CatalogRefusal``.

Plain async functions over an ``AsyncSession``; nothing here knows of the panel or the file.
The admin panel's campaign pages go through ``domain.campaigns``, which scopes these by
merchant.
"""

from __future__ import annotations

from domain.catalog.checks import (
    EXPIRY_FIELDS,
    ProgramChange,
    RewardLine,
    campaign_columns,
    campaign_field_rules,
    campaign_rules,
    campaign_values,
    check_campaign,
    check_merchant,
    check_program,
    check_store,
    expiry_rules,
    merchant_values,
    program_change,
    reward_rules,
    store_values,
    tier_columns,
    tier_rules,
)
from domain.catalog.errors import (
    CatalogRefusal,
    FieldError,
    InvalidFields,
    error_message,
    field_path,
    validation_errors,
)
from domain.catalog.writes import (
    Outcome,
    add_staff,
    campaign_problems,
    change_staff_pin,
    create_campaign,
    create_merchant,
    create_program,
    create_store,
    live_program,
    pin_holder,
    put_campaigns,
    put_rewards,
    put_staff,
    remove_staff,
    set_campaign_status,
    status_problem,
    unknown_zones,
    update_campaign,
    update_merchant,
    update_program,
    update_store,
)

__all__ = [
    "EXPIRY_FIELDS",
    "CatalogRefusal",
    "FieldError",
    "InvalidFields",
    "Outcome",
    "ProgramChange",
    "RewardLine",
    "add_staff",
    "campaign_columns",
    "campaign_field_rules",
    "campaign_problems",
    "campaign_rules",
    "campaign_values",
    "change_staff_pin",
    "check_campaign",
    "check_merchant",
    "check_program",
    "check_store",
    "create_campaign",
    "create_merchant",
    "create_program",
    "create_store",
    "error_message",
    "expiry_rules",
    "field_path",
    "live_program",
    "merchant_values",
    "pin_holder",
    "program_change",
    "put_campaigns",
    "put_rewards",
    "put_staff",
    "remove_staff",
    "reward_rules",
    "set_campaign_status",
    "status_problem",
    "store_values",
    "tier_columns",
    "tier_rules",
    "unknown_zones",
    "update_campaign",
    "update_merchant",
    "update_program",
    "update_store",
    "validation_errors",
]
