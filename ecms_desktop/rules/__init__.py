"""State-by-state resale/exemption certificate rules (Qt-free).

The data lives in ``resources/rules`` (a versioned rules pack with JSON Schemas);
:func:`load_rules_pack` (:mod:`~ecms_desktop.rules.loader`) loads it, checking every file against its
schema (:mod:`~ecms_desktop.rules.schema`), into the frozen dataclasses of :mod:`~ecms_desktop.rules.pack`.
"""

from ecms_desktop.rules.loader import default_rules_dir, load_rules_pack
from ecms_desktop.rules.pack import (
    CONFIDENCE_LEVELS,
    EXPIRY_BASES,
    EXPIRY_KINDS,
    REFUSAL_RULES,
    Acceptance,
    AcceptanceTable,
    ExemptReason,
    ExpiryRule,
    ExtractionVocabulary,
    FieldDef,
    FormIdentification,
    FormRule,
    GoodFaith,
    LabelPhrase,
    MtcRule,
    PermitFormat,
    PrintedPattern,
    RefusedForm,
    RevisionPattern,
    RulesPack,
    RulesPackError,
    SstRule,
    StateRule,
    TitlePhrase,
    UnknownFormError,
    UnknownStateError,
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
    "ExtractionVocabulary",
    "FieldDef",
    "FormIdentification",
    "FormRule",
    "GoodFaith",
    "LabelPhrase",
    "MtcRule",
    "PermitFormat",
    "PrintedPattern",
    "RefusedForm",
    "RevisionPattern",
    "RulesPack",
    "RulesPackError",
    "SstRule",
    "StateRule",
    "TitlePhrase",
    "UnknownFormError",
    "UnknownStateError",
    "default_rules_dir",
    "load_rules_pack",
    "normalize_form_code",
]
