"""Demo data: a realistic, reproducible book of exemption certificates to try the program on.

``ecms demo`` (and the GUI's "Load demo data") fills an empty database with three selling
companies, their customers (resellers, manufacturers, nonprofits, churches, schools, governments,
farms, direct-pay holders; a few parents with subsidiaries), and certificates on the real forms of
the rules pack in every status as of the chosen date: active, expiring soon, expired, archived with
a reason, pending review and rejected with a reason. Multi-state SST and MTC certificates carry one
coverage line per state; some certificates are single-use with a PO number, some are limited to
product or commodity codes or exempt only in part. Each line's expiry comes from the same
:class:`~ecms_desktop.services.certificates.service.ExpiryContext` the rest of the program uses.

Documents are drawn with reportlab as filled-in forms (see :mod:`ecms_desktop.services.demo.documents`); some are
rasterised like crooked desk scans, some are PNG/JPEG pictures, one or two have several pages. A
few dozen distinct files are drawn and shared among the certificates of the same form (a file is
stored once by its SHA-256; each certificate gets its own ``Document`` arrival row).

Reproducible: the same seed and as-of date give the same companies, customers, certificates and
file bytes; only the timestamps of the moment it ran (created/received/audit times) differ.

Speed and the audit trail, measured at 100,000 certificates (see ``bench/README.md``): customers,
certificates, coverage lines and document arrivals are written with bulk Core inserts in chunks, and
the audit trail still gets **one event per created record** (``company.created``,
``customer.created``, ``certificate.created`` with a compact ``after`` that names its lines, expiry
dates and document hashes, ``document.received`` for each distinct file through the normal
document storage) plus one ``demo.generated`` summary. A certificate's review history (approved /
rejected / archived) is recorded inside its ``certificate.created`` event, not as separate events;
the thousands of extra document arrivals that share a file are named in their certificate's event
rather than in one event each.

Everything is written in one transaction: the demo is there completely or not at all (cancelling
rolls it back).
"""

from __future__ import annotations

import datetime as dt
import random
import re
import re._constants as sre_c
import re._parser as sre_parse
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from ecms_desktop.models import (
    Certificate,
    Company,
    CompanyRegistration,
    CoverageLine,
    Customer,
    Document,
    DocumentSource,
    ExemptReason,
    ReviewState,
    Status,
    customer_number_key,
    utcnow,
)
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.rules.pack import MTC_FORM_CODE, SST_FORM_CODE, FormRule
from ecms_desktop.services.certificates.query import CertificateQuery, count_by_status
from ecms_desktop.services.certificates.service import ExpiryContext
from ecms_desktop.services.core import audit, state_digest
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import Cancelled, DocumentError, ValidationError
from ecms_desktop.services.core.expiry import certificate_status
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.core.settings import business_settings
from ecms_desktop.services.demo.documents import (
    CertificateDrawing,
    certification_text,
    draw_certificate_pdf,
    scan_image,
    scan_pdf,
)
from ecms_desktop.services.documents.storage import CheckedFile, check_bytes, store_checked

#: Certificates written per bulk insert (and per progress report / cancel check).
CHUNK = 2000
#: Most distinct document files drawn, whatever the number of certificates.
MAX_DOCUMENTS = 60


@dataclass(frozen=True)
class DemoOptions:
    """What demo data to make: how many certificates, the random seed, the date the statuses are
    for, the name of the default (first) company, and whether to add beside existing data."""

    certificates: int = 1000
    seed: int = 1
    as_of: dt.date = field(default_factory=dt.date.today)
    company: str = ""
    add: bool = False


@dataclass(frozen=True)
class DemoResult:
    """What the demo wrote, with the certificates counted by status as of the date asked."""

    companies: tuple[str, ...]
    default_company: str
    customers: int
    certificates: int
    coverage_lines: int
    document_files: int
    document_arrivals: int
    audit_events: int
    status_counts: dict[Status, int]
    as_of: dt.date
    seed: int
    seconds: float


# -- reference material ---------------------------------------------------------------------------

_COMPANIES: tuple[dict[str, Any], ...] = (
    {"name": "Northwind Industrial Supply", "legal_name": "Northwind Industrial Supply, Inc.",
     "address_line1": "4100 Lakeside Parkway", "address_line2": "Suite 300", "city": "Columbus", "state": "OH",
     "postal_code": "43215", "reply_to_email": "exemptions@northwind-supply.example.com",
     "brand_color": "#1F4E79", "share": 0.7,
     "states": ("OH", "TX", "CA", "NY", "FL", "PA", "IL", "GA", "KY", "MI", "WA", "NC", "IN", "KS", "MO",
                "AZ", "CO", "TN", "WI", "MN", "NJ", "VA", "MD", "MA", "CT", "AL", "LA", "OK", "UT", "NV"),
     "kinds": {"reseller": 46, "manufacturer": 16, "nonprofit": 7, "religious": 3, "educational": 7,
               "government": 11, "farm": 3, "direct_pay": 4, "other": 3}},
    {"name": "Northwind Pacific Distribution", "legal_name": "Northwind Pacific Distribution LLC",
     "address_line1": "1250 Harbor Boulevard", "address_line2": "", "city": "Sacramento", "state": "CA",
     "postal_code": "95814", "reply_to_email": "tax@northwind-pacific.example.com", "brand_color": "#2E7D32",
     "share": 0.2,
     "states": ("CA", "WA", "NV", "AZ", "UT", "HI", "ID", "NM", "CO", "TX"),
     "kinds": {"reseller": 52, "manufacturer": 14, "nonprofit": 6, "religious": 2, "educational": 8,
               "government": 12, "farm": 4, "direct_pay": 1, "other": 1}},
    {"name": "Prairie Ag & Farm Supply", "legal_name": "Prairie Ag & Farm Supply Co.",
     "address_line1": "800 Grand Avenue", "address_line2": "", "city": "Des Moines", "state": "IA",
     "postal_code": "50309", "reply_to_email": "certificates@prairie-ag.example.com", "brand_color": "#8D6E63",
     "share": 0.1,
     "states": ("IA", "NE", "KS", "SD", "ND", "MN", "MO", "IL", "WI", "IN"),
     "kinds": {"farm": 48, "reseller": 24, "manufacturer": 9, "government": 8, "educational": 5,
               "nonprofit": 4, "religious": 1, "other": 1}},
)

#: (city, state, ZIP, area code, county)
_CITIES: tuple[tuple[str, str, str, str, str], ...] = (
    ("Birmingham", "AL", "35203", "205", "Jefferson"), ("Huntsville", "AL", "35801", "256", "Madison"),
    ("Phoenix", "AZ", "85004", "602", "Maricopa"), ("Tucson", "AZ", "85701", "520", "Pima"),
    ("Little Rock", "AR", "72201", "501", "Pulaski"), ("Fayetteville", "AR", "72701", "479", "Washington"),
    ("Los Angeles", "CA", "90012", "213", "Los Angeles"), ("Fresno", "CA", "93721", "559", "Fresno"),
    ("San Diego", "CA", "92101", "619", "San Diego"), ("Oakland", "CA", "94612", "510", "Alameda"),
    ("Sacramento", "CA", "95814", "916", "Sacramento"), ("Denver", "CO", "80202", "303", "Denver"),
    ("Colorado Springs", "CO", "80903", "719", "El Paso"), ("Hartford", "CT", "06103", "860", "Hartford"),
    ("New Haven", "CT", "06510", "203", "New Haven"), ("Washington", "DC", "20001", "202", "District"),
    ("Wilmington", "DE", "19801", "302", "New Castle"), ("Miami", "FL", "33130", "305", "Miami-Dade"),
    ("Tampa", "FL", "33602", "813", "Hillsborough"), ("Orlando", "FL", "32801", "407", "Orange"),
    ("Jacksonville", "FL", "32202", "904", "Duval"), ("Atlanta", "GA", "30303", "404", "Fulton"),
    ("Savannah", "GA", "31401", "912", "Chatham"), ("Honolulu", "HI", "96813", "808", "Honolulu"),
    ("Boise", "ID", "83702", "208", "Ada"), ("Chicago", "IL", "60606", "312", "Cook"),
    ("Peoria", "IL", "61602", "309", "Peoria"), ("Springfield", "IL", "62701", "217", "Sangamon"),
    ("Indianapolis", "IN", "46204", "317", "Marion"), ("Fort Wayne", "IN", "46802", "260", "Allen"),
    ("Des Moines", "IA", "50309", "515", "Polk"), ("Cedar Rapids", "IA", "52401", "319", "Linn"),
    ("Wichita", "KS", "67202", "316", "Sedgwick"), ("Topeka", "KS", "66603", "785", "Shawnee"),
    ("Louisville", "KY", "40202", "502", "Jefferson"), ("Lexington", "KY", "40507", "859", "Fayette"),
    ("New Orleans", "LA", "70112", "504", "Orleans"), ("Baton Rouge", "LA", "70801", "225", "East Baton Rouge"),
    ("Portland", "ME", "04101", "207", "Cumberland"), ("Baltimore", "MD", "21202", "410", "Baltimore City"),
    ("Boston", "MA", "02110", "617", "Suffolk"), ("Worcester", "MA", "01608", "508", "Worcester"),
    ("Detroit", "MI", "48226", "313", "Wayne"), ("Grand Rapids", "MI", "49503", "616", "Kent"),
    ("Minneapolis", "MN", "55401", "612", "Hennepin"), ("St. Cloud", "MN", "56301", "320", "Stearns"),
    ("Jackson", "MS", "39201", "601", "Hinds"), ("Kansas City", "MO", "64106", "816", "Jackson"),
    ("St. Louis", "MO", "63101", "314", "St. Louis City"), ("Billings", "MT", "59101", "406", "Yellowstone"),
    ("Omaha", "NE", "68102", "402", "Douglas"), ("Lincoln", "NE", "68508", "402", "Lancaster"),
    ("Las Vegas", "NV", "89101", "702", "Clark"), ("Reno", "NV", "89501", "775", "Washoe"),
    ("Manchester", "NH", "03101", "603", "Hillsborough"), ("Newark", "NJ", "07102", "973", "Essex"),
    ("Trenton", "NJ", "08608", "609", "Mercer"), ("Albuquerque", "NM", "87102", "505", "Bernalillo"),
    ("New York", "NY", "10007", "212", "New York"), ("Buffalo", "NY", "14202", "716", "Erie"),
    ("Albany", "NY", "12207", "518", "Albany"), ("Charlotte", "NC", "28202", "704", "Mecklenburg"),
    ("Raleigh", "NC", "27601", "919", "Wake"), ("Fargo", "ND", "58102", "701", "Cass"),
    ("Columbus", "OH", "43215", "614", "Franklin"), ("Cleveland", "OH", "44113", "216", "Cuyahoga"),
    ("Cincinnati", "OH", "45202", "513", "Hamilton"), ("Oklahoma City", "OK", "73102", "405", "Oklahoma"),
    ("Tulsa", "OK", "74103", "918", "Tulsa"), ("Portland", "OR", "97204", "503", "Multnomah"),
    ("Philadelphia", "PA", "19107", "215", "Philadelphia"), ("Pittsburgh", "PA", "15222", "412", "Allegheny"),
    ("Providence", "RI", "02903", "401", "Providence"), ("Columbia", "SC", "29201", "803", "Richland"),
    ("Charleston", "SC", "29401", "843", "Charleston"), ("Sioux Falls", "SD", "57104", "605", "Minnehaha"),
    ("Nashville", "TN", "37203", "615", "Davidson"), ("Memphis", "TN", "38103", "901", "Shelby"),
    ("Houston", "TX", "77002", "713", "Harris"), ("Dallas", "TX", "75201", "214", "Dallas"),
    ("Austin", "TX", "78701", "512", "Travis"), ("San Antonio", "TX", "78205", "210", "Bexar"),
    ("Lubbock", "TX", "79401", "806", "Lubbock"), ("Salt Lake City", "UT", "84111", "801", "Salt Lake"),
    ("Burlington", "VT", "05401", "802", "Chittenden"), ("Richmond", "VA", "23219", "804", "Richmond City"),
    ("Norfolk", "VA", "23510", "757", "Norfolk City"), ("Seattle", "WA", "98104", "206", "King"),
    ("Spokane", "WA", "99201", "509", "Spokane"), ("Charleston", "WV", "25301", "304", "Kanawha"),
    ("Milwaukee", "WI", "53202", "414", "Milwaukee"), ("Madison", "WI", "53703", "608", "Dane"),
    ("Cheyenne", "WY", "82001", "307", "Laramie"), ("Anchorage", "AK", "99501", "907", "Anchorage"),
)

_SURNAMES = ("Anderson", "Baker", "Castillo", "Delgado", "Ellison", "Fairbanks", "Garrison", "Hartley",
             "Iverson", "Jamison", "Kowalski", "Lindqvist", "Morrison", "Nakamura", "Okafor", "Pritchard",
             "Quintero", "Rasmussen", "Schaefer", "Thornton", "Underwood", "Valdez", "Whitfield", "Yamamoto",
             "Zielinski", "Brennan", "Caldwell", "Donnelly", "Everett", "Fitzgerald", "Gallagher", "Holloway",
             "McAllister", "Novak", "Osborne", "Petrovic", "Reyes", "Sullivan", "Tran", "Vaughn", "Weston")
_FIRST = ("Maria", "James", "Linda", "Robert", "Patricia", "Michael", "Jennifer", "David", "Elizabeth",
          "William", "Susan", "Carlos", "Aisha", "Daniel", "Karen", "Thomas", "Nancy", "Kevin", "Priya", "Brian",
          "Laura", "Steven", "Grace", "Anthony", "Rachel", "Marcus", "Olivia", "Hector", "Mei", "Samuel", "Dana")
_PLACES = ("Riverside", "Lakeshore", "Summit", "Heartland", "Bluegrass", "Cascade", "Gulf Coast", "Piedmont",
           "Prairie", "Redwood", "Sierra", "Tri-County", "Keystone", "Great Lakes", "Mesa", "Blue Ridge",
           "Golden Valley", "Pine Ridge", "Harbor", "Frontier", "Big Sky", "Ozark", "Chesapeake", "Canyon")
_TRADES = (("Electrical Wholesale", "Wholesale distributor of electrical supplies",
            "Wire, conduit, breakers, lighting fixtures and fittings for resale"),
           ("Plumbing Supply", "Plumbing and HVAC parts distributor",
            "Pipe, valves, fittings, water heaters and HVAC parts for resale"),
           ("Hardware & Lumber", "Retail hardware store and lumber yard",
            "Hand and power tools, fasteners, lumber and building materials for resale"),
           ("Office Products", "Office supply retailer", "Paper, toner, office furniture and supplies for resale"),
           ("Auto Parts", "Automotive parts retailer", "Replacement parts, filters, fluids and batteries for resale"),
           ("Janitorial Supply", "Distributor of cleaning and sanitation products",
            "Cleaning chemicals, paper products and janitorial equipment for resale"),
           ("Safety Products", "Industrial safety equipment distributor",
            "Gloves, eyewear, hard hats and protective clothing for resale"),
           ("Restaurant Supply", "Food service equipment dealer",
            "Commercial kitchen equipment, smallwares and disposables for resale"),
           ("Marine & Outdoor", "Marine and outdoor equipment retailer",
            "Boat parts, outdoor gear and accessories for resale"),
           ("Industrial Distributors", "Industrial MRO distributor",
            "Bearings, power transmission parts, fasteners and tools for resale"))
_MFG = (("Precision Machining", "Contract machining of metal parts",
         "Cutting tools, coolant and machine parts consumed directly in manufacturing"),
        ("Plastics", "Injection-molded plastic components manufacturer",
         "Resin, molds and production machinery used directly in manufacturing"),
        ("Packaging Corp.", "Corrugated packaging manufacturer",
         "Production machinery, adhesives and materials that become part of the product"),
        ("Fabrication Works", "Structural steel fabrication",
         "Welding wire, gases and equipment used directly in fabrication"),
        ("Foods", "Food processing plant", "Processing equipment and ingredients used in production"),
        ("Circuit Technologies", "Printed circuit board assembly",
         "Components and production equipment used directly in manufacturing"))
_SAINTS = ("St. Mark's", "St. Anne's", "Trinity", "Grace", "St. Paul's", "Holy Cross", "Bethel", "Zion",
           "St. Luke's", "Emmanuel")
_SUFFIX_BIZ = ("LLC", "Inc.", "Co.", "Corp.", "LP", "Inc.", "LLC")
_STREETS = ("Commerce Dr", "Industrial Pkwy", "Main St", "Market St", "Oak Ave", "Elm St", "Maple Ave",
            "Warehouse Rd", "Enterprise Blvd", "Airport Rd", "Railroad Ave", "Mill St", "Lakeview Dr",
            "Riverside Dr", "Highway 30", "County Road 12", "Distribution Way", "Technology Dr", "Harbor Blvd",
            "Jefferson St", "Washington Ave", "Lincoln Way", "Center St", "Park Ave", "Broadway")

_KIND_REASON = {"reseller": "resale", "manufacturer": "manufacturing", "nonprofit": "nonprofit",
                "religious": "religious", "educational": "educational", "government": "government",
                "farm": "agricultural", "direct_pay": "direct_pay", "other": "other"}
_KIND_BUSINESS_TYPE = {"reseller": "Wholesale trade", "manufacturer": "Manufacturing",
                       "nonprofit": "Charitable organization", "religious": "Religious organization",
                       "educational": "Educational services", "government": "Government",
                       "farm": "Agriculture, forestry, fishing, hunting", "direct_pay": "Utilities",
                       "other": "Information, publishing and communications"}
_TITLES = {"reseller": ("Purchasing Manager", "Owner", "Controller", "Buyer", "President"),
           "manufacturer": ("Plant Controller", "Procurement Manager", "CFO", "Tax Manager"),
           "nonprofit": ("Executive Director", "Treasurer", "Operations Manager"),
           "religious": ("Pastor", "Church Administrator", "Treasurer"),
           "educational": ("Business Manager", "Purchasing Agent", "Superintendent"),
           "government": ("Procurement Officer", "Finance Director", "Purchasing Agent"),
           "farm": ("Owner", "Partner", "Farm Manager"),
           "direct_pay": ("Director of Tax", "Tax Manager"),
           "other": ("Controller", "Tax Analyst", "Office Manager")}
_REJECT_REASONS = ("Not signed by the purchaser.",
                   "The permit number does not match the state's format; asked the customer for a corrected "
                   "certificate.",
                   "The purchaser's name differs from the customer's legal name on the account.",
                   "The description of the purchaser's business is missing.",
                   "Form not accepted for this exemption reason in this state.",
                   "Illegible scan: the permit number cannot be read.")
_ARCHIVE_REASONS = ("Superseded by a renewed certificate.", "Customer account closed.",
                    "Customer sold the business; the new owner must provide its own certificate.",
                    "Replaced by a multistate SST certificate.", "Duplicate of another certificate on file.")
_REVIEW_WEIGHTS = ((ReviewState.APPROVED.value, 87), (ReviewState.PENDING.value, 6),
                   (ReviewState.REJECTED.value, 3), (ReviewState.ARCHIVED.value, 4))
_APPROVED_TARGETS = ((Status.ACTIVE, 70), (Status.EXPIRING_SOON, 9), (Status.EXPIRED, 21))
#: The first certificates take every status in turn, so that even a tiny demo shows each one.
_FIRST_TARGETS = (Status.ACTIVE, Status.EXPIRING_SOON, Status.EXPIRED, Status.PENDING_REVIEW, Status.REJECTED,
                  Status.ARCHIVED)
_PRODUCT_CODES = ("NW-FAST-100", "NW-TOOL-220", "NW-ELEC-310", "NW-SAFE-415", "NW-PACK-520", "NW-CHEM-610",
                  "NW-MRO-705", "NW-HVAC-812")
#: UNSPSC commodity classes.
_COMMODITY_CODES = ("31161500", "27111700", "39121000", "46181500", "24112400", "47131800", "40141700",
                    "23271400", "10171500", "21101500")


# -- permit numbers from the rules pack's patterns ------------------------------------------------


def _shape(items: Any, rng: random.Random) -> list[str]:
    """One concrete shape of a parsed regular expression (the small subset permit patterns use):
    a list with the characters allowed at each position, branches and repeat counts chosen."""
    out: list[str] = []
    for op, av in items:
        if op is sre_c.LITERAL:
            out.append(chr(av))
        elif op is sre_c.IN:
            choices: list[str] = []
            for sub_op, sub_av in av:
                if sub_op is sre_c.LITERAL:
                    choices.append(chr(sub_av))
                elif sub_op is sre_c.RANGE:
                    choices.extend(chr(c) for c in range(sub_av[0], sub_av[1] + 1))
                elif sub_op is sre_c.CATEGORY and sub_av is sre_c.CATEGORY_DIGIT:
                    choices.extend("0123456789")
            out.append("".join(choices) or "0")
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            lo, hi, sub = av
            if hi is sre_c.MAXREPEAT or hi > lo + 8:  # open-ended: a plausible 6-9 more characters
                lo = max(lo, 6)
                hi = lo + 3
            for _ in range(rng.randint(lo, hi)):
                out.extend(_shape(sub, rng))
        elif op is sre_c.SUBPATTERN:
            out.extend(_shape(av[-1], rng))
        elif op is sre_c.BRANCH:
            out.extend(_shape(rng.choice(av[1]), rng))
        elif op is sre_c.CATEGORY and av is sre_c.CATEGORY_DIGIT:
            out.append("0123456789")
    return out


class PermitNumbers:
    """Plausible permit / registration numbers per state: matching the rules pack's pattern where
    the pack knows one (a few shapes are drawn from the pattern once, then filled in), else a
    number of a common shape."""

    def __init__(self, rules: RulesPack) -> None:
        self.rules = rules
        self._shapes: dict[str, list[list[str]]] = {}

    def _shapes_of(self, state: str, rng: random.Random) -> list[list[str]]:
        shapes = self._shapes.get(state)
        if shapes is None:
            permit = self.rules.state(state).permit
            shapes = []
            if permit.pattern:
                parsed = sre_parse.parse(permit.pattern)
                for _ in range(12):
                    shape = _shape(parsed, rng)
                    if shape and permit.matches("".join(rng.choice(c) for c in shape)):
                        shapes.append(shape)
            self._shapes[state] = shapes
        return shapes

    def make(self, state: str, rng: random.Random) -> str:
        shapes = self._shapes_of(state, rng)
        if shapes:
            return "".join([rng.choice(c) for c in rng.choice(shapes)])
        # No known format: 8-10 digits, sometimes grouped with a hyphen.
        digits = str(rng.randrange(10 ** 9, 10 ** 10))[: rng.choice((8, 9, 10))]
        return digits if rng.random() < 0.7 else f"{digits[:3]}-{digits[3:]}"


# -- plans (pure data, no database ids yet) ------------------------------------------------------


@dataclass
class _CustomerPlan:
    index: int
    company: int
    kind: str
    number: str
    legal_name: str
    email: str
    bill: tuple[str, str, str, str]  # line1, city, state, zip
    ship: tuple[str, str, str, str]
    phone: str
    owner_email: str
    parent: int | None
    trade: tuple[str, str, str]
    contact: tuple[str, str]  # signer name, title
    notes: str = ""


@dataclass
class _LinePlan:
    state: str
    state_tax_id: str
    expiry_date: dt.date | None = None
    expiry_basis: str = ""
    expiry_source: str = ""
    expiry_origin: str = "rules"


@dataclass
class _CertPlan:
    index: int
    customer: int
    company: int
    form: FormRule
    reason: str
    lines: list[_LinePlan]
    review_state: str
    review_reason: str
    signed_date: dt.date
    effective_date: dt.date | None
    certificate_type: str
    po_number: str
    certificate_number: str
    purchaser_tax_id: str
    purchaser_ein: str
    exemption_detail: str
    product_codes: list[str]
    commodity_codes: list[str]
    exempt_percent: Decimal | None
    exempt_amount: Decimal | None
    expiry_override: dt.date | None
    expiry_override_reason: str
    expiry_date: dt.date | None
    has_document: bool
    notes: str = ""


class _Planner:
    """Draws companies, customers and certificates from one seeded random generator."""

    def __init__(self, rules: RulesPack, options: DemoOptions, contexts: Sequence[ExpiryContext],
                 windows: Sequence[int], taken_numbers: set[str], company_names: Sequence[str]) -> None:
        self.rules = rules
        self.options = options
        self.rng = random.Random(f"ecms-demo:{options.seed}:{options.as_of.isoformat()}")
        self.permits = PermitNumbers(rules)
        self.contexts = contexts
        self.windows = windows
        self.taken = taken_numbers
        self.company_names = company_names
        self.as_of = options.as_of
        self._cities_by_state: dict[str, list[tuple[str, str, str, str, str]]] = {}
        for city in _CITIES:
            self._cities_by_state.setdefault(city[1], []).append(city)
        reasons = rules.reason_codes
        self.own_forms: dict[tuple[str, str], list[FormRule]] = {}
        for code, st in sorted(rules.states.items()):
            for reason in reasons:
                forms = [f for f in st.forms if reason in f.exempt_reasons]
                if forms and st.has_sales_tax:
                    self.own_forms[(code, reason)] = forms
        self.sst_states = {reason: [s for s in sorted(rules.states)
                                    if rules.state(s).sst.membership != "none"
                                    and rules.form_acceptance(s, SST_FORM_CODE, reason).accepted]
                           for reason in reasons}
        self.mtc_states = [s for s in sorted(rules.states)
                           if rules.form_acceptance(s, MTC_FORM_CODE, "resale").accepted]
        # Single-state (state, form) pairs whose rules pack expiry is a period, per reason: the pool
        # for certificates that must expire (most states set no expiry at all).
        self.expiring_pool: dict[str, list[tuple[str, FormRule]]] = {}
        for (state, reason), forms in sorted(self.own_forms.items()):
            for form in forms:
                if rules.expiry_rule(state, form.code, reason).kind == "years":
                    self.expiring_pool.setdefault(reason, []).append((state, form))
        self.customers: list[_CustomerPlan] = []
        #: A customer keeps its permit number in a state across its certificates.
        self._permits_held: dict[tuple[int, str], str] = {}

    # -- customers ----------------------------------------------------------------------------

    def plan_customers(self, count: int) -> list[_CustomerPlan]:
        rng = self.rng
        shares = [c["share"] for c in _COMPANIES]
        next_number = 10001
        by_company: dict[int, list[int]] = {}
        for i in range(count):
            company = i if i < len(_COMPANIES) else rng.choices(range(len(_COMPANIES)), shares)[0]
            spec = _COMPANIES[company]
            parent: int | None = None
            siblings = by_company.get(company, [])
            if len(siblings) > 6 and rng.random() < 0.04:
                candidate = self.customers[rng.choice(siblings)]
                if candidate.parent is None and candidate.kind in ("reseller", "manufacturer", "farm"):
                    parent = candidate.index
            while customer_number_key(f"C-{next_number}") in self.taken:
                next_number += 1
            number = f"C-{next_number}"
            next_number += 1
            if parent is not None:
                plan = self._subsidiary(i, company, number, self.customers[parent])
            else:
                kinds, weights = zip(*spec["kinds"].items(), strict=True)
                kind = rng.choices(kinds, weights)[0]
                plan = self._customer(i, company, kind, number, spec["states"])
            self.customers.append(plan)
            by_company.setdefault(company, []).append(i)
        return self.customers

    def _address(self, states: Sequence[str], prefer: str | None = None) -> tuple[tuple[str, str, str, str], str]:
        rng = self.rng
        state = prefer if prefer and rng.random() < 0.75 else rng.choice(states)
        cities = self._cities_by_state.get(state) or [rng.choice(_CITIES)]
        city, st, zip_code, area, _county = rng.choice(cities)
        zip_code = f"{int(zip_code) + rng.randrange(0, 40):05d}"
        line1 = f"{rng.randint(10, 9899)} {rng.choice(_STREETS)}"
        if rng.random() < 0.15:
            line1 += f", {rng.choice(('Suite', 'Unit', 'Bldg'))} {rng.randint(2, 450)}"
        return (line1, city, st, zip_code), f"({area}) 555-{rng.randint(100, 199):04d}"

    def _customer(self, index: int, company: int, kind: str, number: str, states: Sequence[str]) -> _CustomerPlan:
        rng = self.rng
        bill, phone = self._address(states)
        city, state = bill[1], bill[2]
        surname, place = rng.choice(_SURNAMES), rng.choice(_PLACES)
        trade = rng.choice(_TRADES)
        state_name = self.rules.state(state).name
        if kind == "reseller":
            partner = rng.choice([n for n in _SURNAMES if n != surname])
            name = rng.choice((f"{surname} {trade[0]}", f"{place} {trade[0]}", f"{surname} & {partner} "
                               f"{trade[0]}")) + f" {rng.choice(_SUFFIX_BIZ)}"
        elif kind == "manufacturer":
            trade = rng.choice(_MFG)
            name = f"{rng.choice((surname, place))} {trade[0]}"
            if not name.endswith("."):
                name += f" {rng.choice(_SUFFIX_BIZ)}"
        elif kind == "nonprofit":
            name = rng.choice((f"{place} Food Bank", f"Friends of the {city} Public Library",
                               f"{city} Habitat for Humanity", f"{place} Community Health Clinic",
                               f"{city} Youth Soccer Association", f"{place} Animal Rescue League"))
            trade = ("", "Charitable organization (501(c)(3))", "Supplies used in the organization's exempt purpose")
        elif kind == "religious":
            name = rng.choice((f"{rng.choice(_SAINTS)} Lutheran Church", f"First Baptist Church of {city}",
                               f"{rng.choice(_SAINTS)} Catholic Parish", f"{city} Friends Meeting"))
            trade = ("", "Church / religious organization", "Supplies and furnishings for religious worship")
        elif kind == "educational":
            name = rng.choice((f"{city} Unified School District", f"{place} Community College",
                               f"{surname} Academy", f"{place} Christian School"))
            trade = ("", "Nonprofit educational institution", "Classroom supplies, furniture and equipment")
        elif kind == "government":
            county = rng.choice(self._cities_by_state.get(state) or [("", "", "", "", city)])[4]
            name = rng.choice((f"City of {city}", f"{county} County Board of Commissioners",
                               f"{state_name} Department of Transportation", f"{city} Department of Public Works",
                               f"{county} County Sheriff's Office", f"{city} Housing Authority"))
            trade = ("", "Government agency", "Supplies and equipment paid for with agency funds")
        elif kind == "farm":
            name = rng.choice((f"{surname} Family Farms", f"{place} Valley Orchards", f"{surname} Dairy",
                               f"{surname} Cattle Co.", f"{surname} Brothers Grain"))
            if rng.random() < 0.5:
                name += f" {rng.choice(('LLC', 'Inc.', 'LP'))}" if not name.endswith(".") else ""
            trade = ("", "Commercial farming operation", "Feed, seed, fertilizer and farm machinery parts used in "
                     "agricultural production")
        elif kind == "direct_pay":
            name = rng.choice((f"{place} Energy Corporation", f"{place} Telecommunications, Inc.",
                               f"{surname} Health System"))
            trade = ("", "Holder of a direct pay permit", "All tangible personal property; tax self-assessed "
                     "under direct pay permit")
        else:
            name = rng.choice((f"{place} Data Center {rng.choice(_SUFFIX_BIZ)}",
                               f"{place} Broadcasting {rng.choice(_SUFFIX_BIZ)}",
                               f"{surname} Film Productions {rng.choice(_SUFFIX_BIZ)}"))
            trade = ("", "Qualified data center / media production", "Equipment qualifying for the state's exemption")
        org = kind in ("nonprofit", "religious", "educational", "government")
        domain = "-".join(re.findall(r"[a-z0-9]+", name.lower().replace("&", "and"))[:3])
        mailbox = rng.choice(("ap", "purchasing", "tax", "accounting", "admin"))
        email = f"{mailbox}@{domain}.example.{'org' if org else 'com'}"
        ship = bill
        if rng.random() < 0.3:
            ship, _ = self._address(states, prefer=state if rng.random() < 0.4 else None)
        first = rng.choice(_FIRST)
        middle = f" {chr(rng.randrange(65, 91))}." if rng.random() < 0.4 else ""
        contact = (f"{first}{middle} {rng.choice(_SURNAMES)}", rng.choice(_TITLES[kind]))
        owner = rng.choice(_FIRST).lower() + "." + rng.choice(_SURNAMES).lower()
        owner_domain = _COMPANIES[company]["reply_to_email"].split("@", 1)[1]
        return _CustomerPlan(index, company, kind, number, name, email, bill, ship, phone,
                             f"{owner}@{owner_domain}", None, trade, contact)

    def _subsidiary(self, index: int, company: int, number: str, parent: _CustomerPlan) -> _CustomerPlan:
        rng = self.rng
        plan = self._customer(index, company, parent.kind, number, _COMPANIES[company]["states"])
        base = re.sub(r",? (LLC|Inc\.|Co\.|Corp\.|LP)$", "", parent.legal_name)
        state_name = self.rules.state(plan.bill[2]).name
        plan.legal_name = rng.choice((f"{base} - {plan.bill[1]} Branch",
                                      f"{base} of {state_name} {rng.choice(('LLC', 'Inc.'))}"))
        plan.email = parent.email.split("@")[0] + "+" + re.sub(r"[^a-z]", "", plan.bill[1].lower()) + "@" + \
            parent.email.split("@")[1]
        plan.parent = parent.index
        plan.trade = parent.trade
        plan.notes = f"Subsidiary / location of {parent.number}."
        return plan

    # -- certificates -------------------------------------------------------------------------

    def plan_certificates(self, count: int) -> Iterator[_CertPlan]:
        rng = self.rng
        n_customers = len(self.customers)
        for i in range(count):
            customer = self.customers[i] if i < n_customers else rng.choice(self.customers)
            if i < len(_FIRST_TARGETS):
                target = _FIRST_TARGETS[i]
            else:
                review = rng.choices([r for r, _ in _REVIEW_WEIGHTS], [w for _, w in _REVIEW_WEIGHTS])[0]
                target = {ReviewState.PENDING.value: Status.PENDING_REVIEW, ReviewState.REJECTED.value: Status.REJECTED,
                          ReviewState.ARCHIVED.value: Status.ARCHIVED}.get(review) or rng.choices(
                    [s for s, _ in _APPROVED_TARGETS], [w for _, w in _APPROVED_TARGETS])[0]
            yield self._certificate(i, customer, target)

    def _reason_for(self, customer: _CustomerPlan) -> str:
        reason = _KIND_REASON[customer.kind]
        if customer.kind == "manufacturer" and self.rng.random() < 0.35:
            reason = ExemptReason.RESALE.value  # buys components it resells in its products
        return reason

    def _template(self, customer: _CustomerPlan, reason: str, need_expiry: bool
                  ) -> tuple[FormRule, list[str], str]:
        """Form, states and reason: the customer's own state's form mostly; SST / MTC for some."""
        rng = self.rng
        if need_expiry:
            pool = self.expiring_pool.get(reason) or self.expiring_pool[ExemptReason.RESALE.value]
            if reason not in self.expiring_pool:
                reason = ExemptReason.RESALE.value
            near = [p for p in pool if p[0] in (customer.ship[2], customer.bill[2])]
            registered = [p for p in pool if p[0] in _COMPANIES[customer.company]["states"]]
            state, form = rng.choice(near) if near and rng.random() < 0.8 else rng.choice(registered or pool)
            if rng.random() < 0.25:
                # A multistate SST certificate whose lines include a state with an expiry period.
                sst = self.sst_states.get(reason, [])
                if state in sst:
                    others = rng.sample([s for s in sst if s != state], k=min(len(sst) - 1, rng.randint(1, 4)))
                    return self.rules.form(SST_FORM_CODE), sorted([state, *others]), reason
            return form, [state], reason
        home = customer.ship[2] if rng.random() < 0.6 else customer.bill[2]
        roll = rng.random()
        sst = self.sst_states.get(reason, [])
        if roll < 0.18 and len(sst) >= 2:
            k = rng.choices((2, 3, 4, 5, 6, 8), (30, 25, 18, 12, 10, 5))[0]
            states = {home} if home in sst else set()
            while len(states) < min(k, len(sst)):
                states.add(rng.choice(sst))
            return self.rules.form(SST_FORM_CODE), sorted(states), reason
        if roll < 0.26 and reason == ExemptReason.RESALE.value:
            k = rng.choices((2, 3, 4, 5), (40, 30, 20, 10))[0]
            states = {home} if home in self.mtc_states else set()
            while len(states) < k:
                states.add(rng.choice(self.mtc_states))
            return self.rules.form(MTC_FORM_CODE), sorted(states), reason
        candidates = [home, customer.bill[2], customer.ship[2], *rng.sample(_COMPANIES[customer.company]["states"], 3)]
        for state in candidates:
            forms = self.own_forms.get((state, reason))
            if forms:
                # The state's general form first (its first listed form for the reason), others sometimes.
                form = forms[0] if rng.random() < 0.75 else rng.choice(forms)
                return form, [state], reason
            if state in sst:
                return self.rules.form(SST_FORM_CODE), [state], reason
        if reason != ExemptReason.RESALE.value:
            return self._template(customer, ExemptReason.RESALE.value, False)
        state = rng.choice(sorted({s for s, r in self.own_forms if r == reason}))
        return self.own_forms[(state, reason)][0], [state], reason

    def _expiry(self, company: int, form: FormRule, reason: str, states: Sequence[str], eff: dt.date
                ) -> tuple[dt.date | None, list[Any]]:
        ctx = self.contexts[company]
        decisions = [ctx.decide(s, form.code, reason, effective=eff, signed=eff, override=None, override_reason="")
                     for s in states]
        dates = [d.expiry_date for d in decisions if d.expiry_date is not None]
        return (min(dates) if dates else None), decisions

    def _status(self, company: int, expiry: dt.date | None) -> Status:
        return certificate_status(ReviewState.APPROVED.value, [expiry], self.as_of, self.windows[company])

    def _effective_for(self, company: int, form: FormRule, reason: str, states: Sequence[str],
                       target: Status) -> dt.date | None:
        """An effective date at which the certificate's earliest expiry gives ``target`` as of the
        demo date, or None when this form/state cannot (e.g. no expiry). Expiry is non-decreasing in
        the effective date, so a bisection over the last twelve years finds one when it exists."""
        rng, as_of = self.rng, self.as_of
        window = self.windows[company]
        if target is Status.ACTIVE:
            for _ in range(3):
                eff = as_of - dt.timedelta(days=rng.randint(20, 4 * 365))
                if self._status(company, self._expiry(company, form, reason, states, eff)[0]) is Status.ACTIVE:
                    return eff
            eff = as_of - dt.timedelta(days=rng.randint(5, 60))
            return eff if self._status(company, self._expiry(company, form, reason, states, eff)[0]) is \
                Status.ACTIVE else None
        if target is Status.EXPIRING_SOON:
            lo_target, hi_target = as_of, as_of + dt.timedelta(days=window)
        else:
            lo_target = as_of - dt.timedelta(days=rng.choice((rng.randint(1, 120), rng.randint(1, 3 * 365))))
            hi_target = as_of - dt.timedelta(days=1)
        want = lo_target + dt.timedelta(days=rng.randint(0, max(0, (hi_target - lo_target).days)))
        # First guess: shift a probe by the distance between its expiry and the wanted expiry.
        probe = as_of - dt.timedelta(days=365)
        probe_expiry = self._expiry(company, form, reason, states, probe)[0]
        if probe_expiry is None:
            return None
        guess = probe + (want - probe_expiry)
        if guess <= as_of and self._status(company, self._expiry(company, form, reason, states, guess)[0]) is target:
            return guess
        lo, hi = (as_of - dt.timedelta(days=12 * 365)).toordinal(), as_of.toordinal()
        while lo < hi:  # smallest effective date whose expiry is on or after the wanted one
            mid = (lo + hi) // 2
            exp = self._expiry(company, form, reason, states, dt.date.fromordinal(mid))[0]
            if exp is not None and exp < want:
                lo = mid + 1
            else:
                hi = mid
        eff = dt.date.fromordinal(lo)
        return eff if self._status(company, self._expiry(company, form, reason, states, eff)[0]) is target else None

    def _certificate(self, index: int, customer: _CustomerPlan, target: Status) -> _CertPlan:
        rng, as_of = self.rng, self.as_of
        reason = self._reason_for(customer)
        need_expiry = target in (Status.EXPIRING_SOON, Status.EXPIRED)
        eff: dt.date | None = None
        form, states = self.rules.form(SST_FORM_CODE), [customer.bill[2]]
        for attempt in range(6):
            form, states, used_reason = self._template(customer, reason, need_expiry and attempt > 0)
            if target in (Status.ACTIVE, Status.EXPIRING_SOON, Status.EXPIRED):
                eff = self._effective_for(customer.company, form, used_reason, states, target)
                if eff is not None:
                    reason = used_reason
                    break
            else:
                reason = used_reason
                break
        review = {Status.PENDING_REVIEW: ReviewState.PENDING.value, Status.REJECTED: ReviewState.REJECTED.value,
                  Status.ARCHIVED: ReviewState.ARCHIVED.value}.get(target, ReviewState.APPROVED.value)
        if eff is None:
            if target is Status.PENDING_REVIEW:
                eff = as_of - dt.timedelta(days=rng.randint(0, 45))
            elif target is Status.REJECTED:
                eff = as_of - dt.timedelta(days=rng.randint(5, 400))
            elif target is Status.ARCHIVED:
                eff = as_of - dt.timedelta(days=rng.randint(200, 6 * 365))
            else:  # the wanted status was out of reach for every form tried: an ordinary recent one
                eff = as_of - dt.timedelta(days=rng.randint(20, 700))
        signed = eff
        effective: dt.date | None = None
        if rng.random() < 0.2:
            effective, signed = eff, eff - dt.timedelta(days=rng.randint(0, 12))
        review_reason = ""
        if review == ReviewState.REJECTED.value:
            review_reason = rng.choice(_REJECT_REASONS)
        elif review == ReviewState.ARCHIVED.value:
            review_reason = rng.choice(_ARCHIVE_REASONS)
        home = states[0] if customer.bill[2] not in states else customer.bill[2]
        tax_id = self._permit(customer.index, home) if self.rules.state(home).has_sales_tax else ""
        lines = [_LinePlan(s, tax_id if s == home else self._permit(customer.index, s)) for s in states]
        if not form.is_multistate:
            lines[0].state_tax_id = ""
        single = form.single_use_allowed and rng.random() < 0.05
        po = f"PO-{signed.year % 100:02d}{rng.randint(10000, 99999)}" if single else ""
        detail = self._exemption_detail(reason, home)
        products: list[str] = []
        commodities: list[str] = []
        percent: Decimal | None = None
        amount: Decimal | None = None
        roll = rng.random()
        if roll < 0.02:
            products = sorted(rng.sample(_PRODUCT_CODES, rng.randint(1, 3)))
        elif roll < 0.035:
            commodities = sorted(rng.sample(_COMMODITY_CODES, rng.randint(1, 3)))
        elif roll < 0.045 and reason != ExemptReason.RESALE.value:
            percent = Decimal(rng.choice(("25", "50", "60", "75")))
        elif roll < 0.05 and reason != ExemptReason.RESALE.value:
            amount = Decimal(rng.choice(("2500.00", "5000.00", "15000.00")))
        override: dt.date | None = None
        override_reason = ""
        if review == ReviewState.APPROVED.value and target is Status.ACTIVE and rng.random() < 0.005:
            override = as_of + dt.timedelta(days=rng.randint(200, 900))
            override_reason = "The customer's state permit expires on this date (checked on the state's lookup)."
        ctx = self.contexts[customer.company]
        for line in lines:
            decision = ctx.decide(line.state, form.code, reason, effective=effective, signed=signed,
                                  override=override, override_reason=override_reason)
            line.expiry_date, line.expiry_basis = decision.expiry_date, decision.basis
            line.expiry_source, line.expiry_origin = decision.source, decision.origin
        dates = [line.expiry_date for line in lines if line.expiry_date is not None]
        number = f"EC-{signed.year}-{index + 1:06d}" if rng.random() < 0.85 else ""
        has_document = not (review == ReviewState.APPROVED.value and rng.random() < 0.03)
        notes = ""
        if single:
            notes = f"Single purchase: {po}."
        elif products or commodities:
            notes = "Exemption limited to the listed codes."
        return _CertPlan(index, customer.index, customer.company, form, reason, lines, review, review_reason,
                         signed, effective, "single_use" if single else "blanket", po, number, tax_id,
                         f"{rng.randint(10, 99)}-{rng.randint(1000000, 9999999)}", detail, products, commodities,
                         percent, amount, override, override_reason, min(dates) if dates else None, has_document,
                         notes)

    def _permit(self, customer: int, state: str) -> str:
        key = (customer, state)
        number = self._permits_held.get(key)
        if number is None:
            number = self._permits_held[key] = self.permits.make(state, self.rng)
        return number

    def _exemption_detail(self, reason: str, state: str) -> str:
        rng = self.rng
        n = rng.randint(100000, 999999)
        return {
            "resale": "",
            "government": f"Government entity; purchases paid with agency funds (agency no. {state}-{n})",
            "nonprofit": f"501(c)(3) organization; state exemption no. E{n}",
            "religious": f"Church exempt under state law; exemption no. R{n}",
            "educational": f"Nonprofit school; exemption no. ED{n}",
            "manufacturing": "Machinery, equipment and materials used directly in manufacturing",
            "agricultural": f"Farm operation; agricultural exemption no. AG{n}",
            "direct_pay": f"Direct pay permit no. DP-{n}",
            "other": "Qualified data center equipment exemption",
        }.get(reason, "")


# -- documents ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _DemoFile:
    checked: CheckedFile
    form_code: str
    states: tuple[str, ...]
    original_name: str


_DOC_KINDS_FIRST = ("pdf", "scan", "png", "jpeg", "scan_multi", "pdf", "scan", "pdf_multi")
_DOC_KINDS = (("pdf", 42), ("scan", 36), ("png", 9), ("jpeg", 8), ("scan_multi", 3), ("pdf_multi", 2))


def _drawing_for(plan: _CertPlan, customer: _CustomerPlan, company: dict[str, Any], registrations: dict[str, str],
                 rules: RulesPack, rng: random.Random) -> CertificateDrawing:
    form = plan.form
    home = plan.lines[0].state
    state = rules.state(home)
    if form.is_multistate:
        issuer = form.issuer or "Multistate Tax Commission"
    else:
        issuer = f"{state.name} - Department of Revenue / Taxation"
    if form.code == SST_FORM_CODE and form.reason_letters:
        labels = {r.code: r.label for r in rules.exempt_reasons}
        reasons = tuple((f"{letter}  {labels.get(code, code)}", code == plan.reason and
                         letter == min(k for k, v in form.reason_letters.items() if v == plan.reason))
                        for letter, code in sorted(form.reason_letters.items()))
    else:
        labels = {r.code: r.label for r in rules.exempt_reasons}
        reasons = tuple((labels.get(code, code), code == plan.reason) for code in form.exempt_reasons)
    rev = re.search(r"\s*\((?:Rev(?:ised)?|REV)\.?\s*([^)]*)\)\s*$", form.name)
    title = form.name[:rev.start()] if rev else form.name
    revision = form.revision or (rev.group(1) if rev else "")
    received = plan.signed_date + dt.timedelta(days=rng.randint(1, 12))
    address = (customer.bill[0], f"{customer.bill[1]}, {customer.bill[2]} {customer.bill[3]}")
    seller_address = tuple(p for p in (company["address_line1"], company["address_line2"],
                                       f"{company['city']}, {company['state']} {company['postal_code']}") if p)
    return CertificateDrawing(
        form_code=form.code, form_number=form.number or form.code, form_title=title, issuer=issuer,
        revision=revision, seller_name=company["legal_name"], seller_address=seller_address,
        seller_permit=registrations.get(home, ""), purchaser_name=customer.legal_name,
        purchaser_address=address, purchaser_phone=customer.phone,
        permit_label=(state.permit.label if not form.is_multistate else "Purchaser's tax ID / registration number"),
        permit_number=plan.purchaser_tax_id, business_description=customer.trade[1],
        property_description=customer.trade[2], reasons=reasons,
        state_lines=tuple((line.state, line.state_tax_id) for line in plan.lines) if form.is_multistate else (),
        single_use=plan.certificate_type == "single_use", po_number=plan.po_number,
        exemption_detail=plan.exemption_detail, signer_name=customer.contact[0], signer_title=customer.contact[1],
        signed_date=plan.signed_date, certificate_number=plan.certificate_number,
        received_stamp=received if rng.random() < 0.45 else None,
        certification_text=certification_text("resale" if plan.reason == "resale" else "exemption",
                                               [rules.state(line.state).name for line in plan.lines]),
    )


def _make_documents(plans: Sequence[_CertPlan], customers: Sequence[_CustomerPlan],
                    registrations: Sequence[dict[str, str]], rules: RulesPack, count: int, seed: str,
                    progress: Progress | None, cancel: CancelCheck | None, total: int) -> list[tuple[int, _DemoFile]]:
    """Draw ``count`` documents from the given plans (distinct forms first) and probe each one in
    the document sandbox. Returns (plan index it was drawn from, file)."""
    rng = random.Random(f"{seed}:documents")
    chosen: list[_CertPlan] = []
    seen: set[str] = set()
    for plan in plans:
        if plan.has_document and plan.form.code not in seen and len(chosen) < count:
            chosen.append(plan)
            seen.add(plan.form.code)
    taken = {plan.index for plan in chosen}
    for plan in plans:
        if len(chosen) >= count:
            break
        if plan.has_document and plan.index not in taken:
            chosen.append(plan)
            taken.add(plan.index)
    out: list[tuple[int, _DemoFile]] = []
    for k, plan in enumerate(chosen):
        if cancel and cancel():
            raise Cancelled("Demo data cancelled; nothing was written.")
        if progress:
            progress(k, total, f"Drawing certificate documents ({k + 1} of {len(chosen)})")
        kind = _DOC_KINDS_FIRST[k] if k < len(_DOC_KINDS_FIRST) else \
            rng.choices([x for x, _ in _DOC_KINDS], [w for _, w in _DOC_KINDS])[0]
        customer = customers[plan.customer]
        drawing = _drawing_for(plan, customer, _COMPANIES[plan.company], registrations[plan.company], rules, rng)
        if kind.endswith("multi"):
            drawing = replace(drawing, extra_pages=1 + (k % 2))
        pdf = draw_certificate_pdf(drawing, rng)
        slug = "_".join(re.findall(r"[A-Za-z0-9]+", customer.legal_name))[:40]
        stamp = plan.signed_date + dt.timedelta(days=rng.randint(1, 10))
        if kind.startswith("scan"):
            data, name = scan_pdf(pdf, rng), f"scan_{stamp:%Y%m%d}_{rng.randint(1, 999):04d}.pdf"
        elif kind == "png":
            data, name = scan_image(pdf, rng, fmt="png"), f"{plan.form.code}_{slug}.png"
        elif kind == "jpeg":
            data, name = scan_image(pdf, rng, fmt="jpeg"), f"IMG_{rng.randint(1000, 9999)}.jpg"
        else:
            data, name = pdf, f"{plan.form.code}_{slug}.pdf"
        try:
            checked = check_bytes(data, name)
        except DocumentError as exc:  # a drawing bug, not the user's doing: say which file
            raise DocumentError(f"The demo document {name} could not be read back: {exc}") from exc
        out.append((plan.index, _DemoFile(checked, plan.form.code, tuple(line.state for line in plan.lines), name)))
    return out


# -- the service ----------------------------------------------------------------------------------


def _customers_for(n_certificates: int) -> int:
    """About four certificates per customer (renewals, several states), at least a handful."""
    return max(len(_COMPANIES) * 3, min(n_certificates, round(n_certificates / 4)))


def _documents_for(n_certificates: int) -> int:
    return max(len(_DOC_KINDS_FIRST), min(MAX_DOCUMENTS, n_certificates // 4))


def existing_data(session: Session) -> dict[str, int]:
    """How many companies, customers and certificates the database holds."""
    return {
        "companies": session.execute(select(func.count()).select_from(Company)).scalar_one(),
        "customers": session.execute(select(func.count()).select_from(Customer)).scalar_one(),
        "certificates": session.execute(select(func.count()).select_from(Certificate)).scalar_one(),
    }


class DemoService:
    """Fill a database with demo data (see the module docstring for what and how)."""

    def __init__(self, db: Database, rules: RulesPack | None = None) -> None:
        self.db = db
        self.rules = rules or load_rules_pack()

    def generate(self, options: DemoOptions, *, progress: Progress | None = None,
                 cancel: CancelCheck | None = None) -> DemoResult:
        """Write the demo in one transaction. Refused (ValidationError) when the database already
        holds companies, customers or certificates, unless ``options.add``: then companies with the
        demo's names are reused and new customer numbers skip the ones in use. Raises
        :class:`Cancelled` (nothing written) when ``cancel()`` turns true."""
        started = time.perf_counter()
        n = options.certificates
        if n < 1:
            raise ValidationError("Say how many demo certificates to make (at least 1).")
        if n > 1_000_000:
            raise ValidationError("At most 1,000,000 demo certificates.")
        names = [options.company.strip() or _COMPANIES[0]["name"], *(c["name"] for c in _COMPANIES[1:])]
        if len(set(n.casefold() for n in names)) != len(names):
            raise ValidationError(f"The company name {names[0]!r} is already used by another demo company.")

        # Read what is there (outside the write transaction: drawing documents takes a while).
        with self.db.reader() as s:
            existing = existing_data(s)
            taken = set(s.execute(select(Customer.number_key)).scalars())
            contexts, windows = [], []
            for name in names:
                company = s.execute(select(Company).where(Company.name == name)).scalar_one_or_none()
                if company is None:
                    contexts.append(ExpiryContext(self.rules))
                    windows.append(business_settings(s, None).expiring_soon_days)
                else:
                    contexts.append(ExpiryContext.load(s, self.rules, company.id))
                    windows.append(business_settings(s, company.id).expiring_soon_days)
        _refuse_unless_empty(existing, options.add, self.db.display_url)

        planner = _Planner(self.rules, options, contexts, windows, taken, names)
        registrations = [self._registrations(c["states"], planner.rng) for c in _COMPANIES]
        customers = planner.plan_customers(_customers_for(n))
        n_docs = _documents_for(n)
        total = n_docs + len(customers) + n
        cert_plans = planner.plan_certificates(n)
        first_chunk = [next(cert_plans) for _ in range(min(CHUNK, n))]
        files = _make_documents(first_chunk, customers, registrations, self.rules, n_docs,
                                f"ecms-demo:{options.seed}:{options.as_of.isoformat()}", progress, cancel, total)

        with self.db.transaction() as s:
            # Checked again under the write lock: someone may have written meanwhile.
            _refuse_unless_empty(existing_data(s), options.add, self.db.display_url)
            writer = _Writer(s, self.rules, options, names, registrations, customers, files, progress, cancel,
                             total, n_docs)
            writer.companies()
            writer.customers()
            writer.certificates(first_chunk)
            while True:
                chunk = [p for _, p in zip(range(CHUNK), cert_plans, strict=False)]
                if not chunk:
                    break
                writer.certificates(chunk)
            window = writer.window_of_default()
            counts = count_by_status(s, CertificateQuery(as_of=options.as_of, window_days=window,
                                                         company_id=None))
            seconds = time.perf_counter() - started
            audit.record(s, "demo.generated", "database", "demo", details={
                "seed": options.seed, "as_of": options.as_of, "certificates": n, "customers": len(customers),
                "companies": names, "coverage_lines": writer.n_lines, "document_files": len(files),
                "document_arrivals": writer.n_documents, "added_to_existing": options.add,
                "status_counts": {k.value: v for k, v in counts.items()},
            })
            writer.n_events += 1
            if progress:
                progress(total, total, "Demo data written")
            return DemoResult(tuple(names), names[0], len(customers), n, writer.n_lines, len(files),
                              writer.n_documents, writer.n_events, counts, options.as_of, options.seed,
                              seconds)

    def _registrations(self, states: Sequence[str], rng: random.Random) -> dict[str, str]:
        permits = PermitNumbers(self.rules)
        return {st: permits.make(st, rng) for st in states if self.rules.state(st).has_sales_tax}


def _refuse_unless_empty(existing: dict[str, int], add: bool, url: str) -> None:
    if add or not any(existing.values()):
        return
    raise ValidationError(
        f"{url} already holds data ({existing['companies']} companies, {existing['customers']} customers, "
        f"{existing['certificates']} certificates). Demo data goes into an empty database: use a new one "
        "(--db), or add the demo beside your data with --add (its customers get numbers not yet in use)."
    )


class _Writer:
    """Writes the plans inside the demo's transaction, in bulk, with their audit events."""

    def __init__(self, session: Session, rules: RulesPack, options: DemoOptions, names: Sequence[str],
                 registrations: Sequence[dict[str, str]], customers: Sequence[_CustomerPlan],
                 files: Sequence[tuple[int, _DemoFile]], progress: Progress | None, cancel: CancelCheck | None,
                 total: int, done: int) -> None:
        self.s = session
        self.rules = rules
        self.options = options
        self.names = names
        self.registrations = registrations
        self.plans = customers
        self.files = files
        self.progress = progress
        self.cancel = cancel
        self.total = total
        self.done = done
        self.company_ids: list[int] = []
        self.customer_ids: list[int] = [0] * len(customers)
        self.actor = audit.current_actor()
        self.n_lines = 0
        self.n_documents = 0
        self.n_events = 0
        self.stored: dict[str, int] = {}  # sha256 -> first document id
        self.drawn_from = {plan_index: f for plan_index, f in files}
        self.by_form: dict[str, list[_DemoFile]] = {}
        self.by_state: dict[str, list[_DemoFile]] = {}
        for _, f in files:
            self.by_form.setdefault(f.form_code, []).append(f)
            for st in f.states:
                self.by_state.setdefault(st, []).append(f)
        self.turn: dict[str, int] = {}

    def _tick(self, step: int, text: str) -> None:
        if self.cancel and self.cancel():
            raise Cancelled("Demo data cancelled; nothing was written.")
        self.done += step
        if self.progress:
            self.progress(min(self.done, self.total), self.total, text)

    def window_of_default(self) -> int:
        return business_settings(self.s, self.company_ids[0]).expiring_soon_days

    def companies(self) -> None:
        events = []
        for k, (name, spec) in enumerate(zip(self.names, _COMPANIES, strict=True)):
            company = self.s.execute(select(Company).where(Company.name == name)).scalar_one_or_none()
            if company is None:
                company = Company(name=name, legal_name=spec["legal_name"] if k or not self.options.company
                                  else name, address_line1=spec["address_line1"],
                                  address_line2=spec["address_line2"], city=spec["city"], state=spec["state"],
                                  postal_code=spec["postal_code"], reply_to_email=spec["reply_to_email"],
                                  brand_color=spec["brand_color"])
                for st, number in sorted(self.registrations[k].items()):
                    company.registrations.append(CompanyRegistration(state=st, number=number))
                self.s.add(company)
                self.s.flush()
                events.append(audit.NewEvent("company.created", "company", company.id, company_id=company.id,
                                             after={"name": company.name, "legal_name": company.legal_name,
                                                    "state": company.state, "reply_to_email": company.reply_to_email,
                                                    "registrations": dict(sorted(self.registrations[k].items()))},
                                             details={"origin": "demo", "default": k == 0}))
            self.company_ids.append(company.id)
        audit.record_many(self.s, events, actor=self.actor)
        self.n_events += len(events)

    def customers(self) -> None:
        table = cast(Table, Customer.__table__)
        now = utcnow()
        # Parents before subsidiaries, so that parent ids are known.
        for wave in ([p for p in self.plans if p.parent is None], [p for p in self.plans if p.parent is not None]):
            for start in range(0, len(wave), CHUNK * 2):
                part = wave[start:start + CHUNK * 2]
                rows = [{
                    "company_id": self.company_ids[p.company], "number": p.number,
                    "number_key": customer_number_key(p.number), "legal_name": p.legal_name, "email": p.email,
                    "bill_to_line1": p.bill[0], "bill_to_city": p.bill[1], "bill_to_state": p.bill[2],
                    "bill_to_zip": p.bill[3], "ship_to_line1": p.ship[0], "ship_to_city": p.ship[1],
                    "ship_to_state": p.ship[2], "ship_to_zip": p.ship[3], "owner_email": p.owner_email,
                    "parent_id": self.customer_ids[p.parent] if p.parent is not None else None,
                    "notes": p.notes, "created_at": now,
                } for p in part]
                ids = self.s.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                                     rows).scalars().all()
                state_digest.touch(self.s, "customer", ids)
                for p, new_id in zip(part, ids, strict=True):
                    self.customer_ids[p.index] = new_id
                events = [audit.NewEvent("customer.created", "customer", new_id,
                                         company_id=self.company_ids[p.company],
                                         after={"number": p.number, "legal_name": p.legal_name, "email": p.email,
                                                "parent": self.plans[p.parent].number if p.parent is not None
                                                else None}, details={"origin": "demo"})
                          for p, new_id in zip(part, ids, strict=True)]
                audit.record_many(self.s, events, actor=self.actor)
                self.n_events += len(events)
                self.s.expunge_all()
                self._tick(len(part), f"Customers ({start + len(part)} of {len(wave)})")

    def _file_for(self, plan: _CertPlan) -> _DemoFile | None:
        if not plan.has_document or not self.files:
            return None
        own = self.drawn_from.get(plan.index)
        if own is not None:
            return own
        for key, pool in ((plan.form.code, self.by_form.get(plan.form.code)),
                          (plan.lines[0].state, self.by_state.get(plan.lines[0].state)),
                          ("*", [f for _, f in self.files])):
            if pool:
                turn = self.turn.get(key, 0)
                self.turn[key] = turn + 1
                return pool[turn % len(pool)]
        return None

    def certificates(self, plans: Sequence[_CertPlan]) -> None:
        s = self.s
        now = utcnow()
        cert_table = cast(Table, Certificate.__table__)
        line_table = cast(Table, CoverageLine.__table__)
        doc_table = cast(Table, Document.__table__)
        rows = []
        for p in plans:
            customer = self.plans[p.customer]
            reviewed = p.review_state != ReviewState.PENDING.value
            rows.append({
                "company_id": self.company_ids[p.company], "customer_id": self.customer_ids[p.customer],
                "form_code": p.form.code, "certificate_number": p.certificate_number,
                "purchaser_name": customer.legal_name,
                "purchaser_address": f"{customer.bill[0]}, {customer.bill[1]}, {customer.bill[2]} {customer.bill[3]}",
                "purchaser_tax_id": p.purchaser_tax_id, "purchaser_ein": p.purchaser_ein,
                "business_type": _KIND_BUSINESS_TYPE[customer.kind], "business_description": customer.trade[1],
                "property_description": customer.trade[2], "exempt_reason": p.reason,
                "exemption_detail": p.exemption_detail, "certificate_type": p.certificate_type,
                "po_number": p.po_number, "signed": True, "signer_name": customer.contact[0],
                "signer_title": customer.contact[1], "signed_date": p.signed_date, "effective_date": p.effective_date,
                "expiry_override": p.expiry_override, "expiry_override_reason": p.expiry_override_reason,
                "expiry_date": p.expiry_date, "review_state": p.review_state, "review_reason": p.review_reason,
                "state_before_archive": ReviewState.APPROVED.value if p.review_state == ReviewState.ARCHIVED.value
                else None,
                "reviewed_by": self.actor if reviewed else "",
                "reviewed_at": _at(p.signed_date + dt.timedelta(days=3 + p.index % 9), p.index) if reviewed else None,
                "product_codes": p.product_codes, "commodity_codes": p.commodity_codes,
                "exempt_percent": p.exempt_percent, "exempt_amount": p.exempt_amount, "currency": "USD",
                "notes": p.notes, "owner_email": "", "origin": "demo", "created_at": now, "updated_at": now,
                "version": 1,
            })
        ids = s.execute(insert(cert_table).returning(cert_table.c.id, sort_by_parameter_order=True),
                        rows).scalars().all()
        state_digest.touch(s, "certificate", ids)
        line_rows = []
        doc_rows = []
        events = []
        for p, cert_id in zip(plans, ids, strict=True):
            for line in p.lines:
                line_rows.append({"certificate_id": cert_id, "state": line.state, "state_tax_id": line.state_tax_id,
                                  "local_jurisdictions": [], "expiry_date": line.expiry_date,
                                  "expiry_basis": line.expiry_basis, "expiry_source": line.expiry_source,
                                  "expiry_origin": line.expiry_origin})
            company_id = self.company_ids[p.company]
            demo_file = self._file_for(p)
            doc_sha = None
            if demo_file is not None:
                doc_sha = demo_file.checked.sha256
                received = _at(p.signed_date + dt.timedelta(days=1 + p.index % 11), p.index)
                if doc_sha not in self.stored:
                    # The first arrival of each distinct file goes through the normal document storage
                    # (stored by hash, audited as document.received).
                    doc = store_checked(s, demo_file.checked, received_via=DocumentSource.DEMO.value,
                                        certificate_id=cert_id, received_at=received, company_id=company_id)
                    self.stored[doc_sha] = doc.id
                    self.n_events += 1
                else:
                    doc_rows.append({"certificate_id": cert_id, "sha256": doc_sha,
                                     "original_name": demo_file.original_name,
                                     "received_via": DocumentSource.DEMO.value, "received_at": received,
                                     "sent_at": None, "received_by": self.actor, "view_rotation": 0})
                self.n_documents += 1
            events.append(audit.NewEvent(
                "certificate.created", "certificate", cert_id, company_id=company_id, certificate_id=cert_id,
                after={"customer_number": self.plans[p.customer].number, "form_code": p.form.code,
                       "certificate_number": p.certificate_number, "exempt_reason": p.reason,
                       "certificate_type": p.certificate_type, "po_number": p.po_number or None,
                       "purchaser_tax_id": p.purchaser_tax_id, "signed_date": p.signed_date,
                       "effective_date": p.effective_date,
                       "lines": [[line.state, line.expiry_date] for line in p.lines],
                       "review_state": p.review_state, "review_reason": p.review_reason or None,
                       "document_sha256": doc_sha},
                details={"origin": "demo"}))
        s.execute(insert(line_table), line_rows)
        if doc_rows:
            doc_ids = s.execute(insert(doc_table).returning(doc_table.c.id), doc_rows).scalars()
            state_digest.touch(s, "document", doc_ids)
        self.n_lines += len(line_rows)
        audit.record_many(s, events, actor=self.actor)
        self.n_events += len(events)
        s.expunge_all()
        self._tick(len(plans), f"Certificates ({plans[-1].index + 1} of {self.options.certificates})")


def _at(day: dt.date, salt: int) -> dt.datetime:
    """A working-hours UTC time on ``day`` (deterministic, so the data repeats with the seed)."""
    minutes = 13 * 60 + (salt * 37) % (8 * 60)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(minutes=minutes)
