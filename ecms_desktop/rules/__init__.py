"""State-by-state resale/exemption certificate rules (Qt-free).

The data lives in ``resources/rules`` (a versioned rules pack with JSON Schemas);
:func:`load_rules_pack` loads it into frozen dataclasses.
"""

from ecms_desktop.rules.pack import (
    CONFIDENCE_LEVELS,
    EXPIRY_BASES,
    EXPIRY_KINDS,
    REFUSAL_RULES,
    Acceptance,
    AcceptanceTable,
    ExemptReason,
    ExpiryRule,
    FieldDef,
    FormRule,
    GoodFaith,
    MtcRule,
    PermitFormat,
    RefusedForm,
    RulesPack,
    RulesPackError,
    SstRule,
    StateRule,
    UnknownFormError,
    UnknownStateError,
    default_rules_dir,
    load_rules_pack,
    normalize_form_code,
)

__all__ = [
    "CONFIDENCE_LEVELS",
    "EXPIRY_BASES",
    "EXPIRY_KINDS",
    "REFUSAL_RULES",
    "Acceptance",
    "AcceptanceTable",
    "ExemptReason",
    "ExpiryRule",
    "FieldDef",
    "FormRule",
    "GoodFaith",
    "MtcRule",
    "PermitFormat",
    "RefusedForm",
    "RulesPack",
    "RulesPackError",
    "SstRule",
    "StateRule",
    "UnknownFormError",
    "UnknownStateError",
    "default_rules_dir",
    "load_rules_pack",
    "normalize_form_code",
]
