"""A generated set of real-looking scans with the values each should read as: the real official forms of
``../shared/real-forms`` filled with made-up purchasers (names, addresses, permit numbers in their
state's format, EINs, signers, dates, checked reason boxes) and scanned (150-300 dpi, skewed, some
sideways or upside down, noisy, unevenly lit, grey or colour, JPEG/PNG/TIFF or an image-only PDF), plus
documents that are not a known form (a business letter claiming exemption, an entity's own certificate)
whose purchaser is still expected.

Everything follows from the seed: :func:`scan_set` gives the same items, values and bytes on every run,
and nothing is picked by hand. An item's scan is made only when asked for (:meth:`ScanItem.scan`), so
listing the set costs nothing; making all its scans takes seconds. Used by the tests and by
``bench/bench_scans.py``::

    from tests.helpers.scan_set import scan_set
    for item in scan_set():
        item.scan(), item.form_code, item.state, item.expected

Fields: :data:`FIELDS`, names of the rules pack's extraction. ``expected`` holds those the document
carries; on a known form a field of :data:`FIELDS` that is not in it is not on the document (the other
fields the reader may report, such as a description of the items, are not scored).
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

import pymupdf

from tests.helpers.real_forms import REAL_FORMS, FieldText, draw_fields
from tests.helpers.scans import Scan, image_pdf, multipage_tiff, scan

__all__ = ["FIELDS", "SEED", "SIZE", "ScanItem", "parse_date", "same_value", "scan_set"]

SEED = 13
SIZE = 36
#: The fields whose values the set knows (and a bench scores).
FIELDS = ("purchaser_name", "purchaser_address", "purchaser_tax_id", "purchaser_ein", "states", "exempt_reason",
          "certificate_type", "signer_name", "signer_title", "signed_date", "expiry_date", "seller_name",
          "seller_address")

Values = dict[str, FieldText]
Expected = dict[str, str]

# --------------------------------------------------------------------------- made-up parties

_FIRST = ("Harbor", "Lone Star", "Blue Ridge", "Maple Leaf", "Summit", "Cedar Point", "Riverbend", "Prairie",
          "Northwind", "Copper Creek", "Bayside", "Ironwood", "Silver Lake", "Red Oak", "Pioneer", "Evergreen",
          "Granite", "Sunrise", "Highland", "Lakeshore", "Old Mill", "Meridian", "Keystone", "Beacon")
_SECOND = ("Trading", "Supply", "Hardware", "Outfitters", "Distributors", "Provisions", "Auto Parts",
           "Office Products", "Gift Shop", "Marine", "Electric", "Building Materials", "Foods", "Pharmacy",
           "Books", "Garden Center", "Paper Goods", "Tile & Stone")
_SUFFIX = ("LLC", "Inc.", "Co.", "Corp.", "Ltd.", "Company", "LLC", "Inc.")
_PEOPLE_FIRST = ("Maria", "James", "Linda", "Robert", "Patricia", "Michael", "Jennifer", "David", "Susan",
                 "Carlos", "Aisha", "Thomas", "Nancy", "Daniel", "Karen", "Wei", "Priya", "Kevin", "Laura",
                 "Brian", "Olga", "Samuel", "Grace", "Victor")
_PEOPLE_LAST = ("Garcia", "Johnson", "Nguyen", "Williams", "Brown", "Miller", "Davis", "Lopez", "Wilson",
                "Anderson", "Thomas", "Moore", "Martin", "Lee", "Thompson", "White", "Harris", "Clark",
                "Lewis", "Walker", "Kowalski", "Okafor", "Schmidt", "Patel")
_TITLES = ("Owner", "President", "Controller", "Purchasing Manager", "CFO", "Office Manager", "Treasurer",
           "Partner", "Vice President", "Buyer")
_STREETS = ("Main", "Oak", "Elm", "Commerce", "Industrial", "Market", "Washington", "Lincoln", "Park",
            "Lake", "Hillcrest", "Broad", "Mill", "Church", "Center", "Front")
_STREET_KINDS = ("St", "Ave", "Blvd", "Rd", "Dr", "Way", "Pkwy")
#: A few real cities of each state and the first digits of their ZIP codes.
_CITIES = {
    "TX": (("Austin", "787"), ("Houston", "770"), ("Dallas", "752"), ("San Antonio", "782")),
    "NY": (("Albany", "122"), ("Buffalo", "142"), ("Rochester", "146"), ("Brooklyn", "112")),
    "PA": (("Harrisburg", "171"), ("Pittsburgh", "152"), ("Allentown", "181"), ("Erie", "165")),
    "MI": (("Lansing", "489"), ("Detroit", "482"), ("Grand Rapids", "495"), ("Kalamazoo", "490")),
    "IN": (("Indianapolis", "462"), ("Fort Wayne", "468"), ("Evansville", "477"), ("South Bend", "466")),
    "MA": (("Boston", "021"), ("Worcester", "016"), ("Springfield", "011"), ("Lowell", "018")),
    "CT": (("Hartford", "061"), ("New Haven", "065"), ("Stamford", "069"), ("Bridgeport", "066")),
    "DC": (("Washington", "200"),),
    "OH": (("Columbus", "432"), ("Toledo", "436")),
    "IL": (("Chicago", "606"), ("Peoria", "616")),
    "GA": (("Atlanta", "303"), ("Savannah", "314")),
    "MO": (("St. Louis", "631"), ("Kansas City", "641")),
    "WI": (("Madison", "537"), ("Milwaukee", "532")),
    "MN": (("Minneapolis", "554"), ("Duluth", "558")),
}
_DATE_FORMATS = ("%m/%d/%Y", "%m/%d/%Y", "%m/%d/%Y", "%B %d, %Y", "%m-%d-%Y")


@dataclass(frozen=True)
class _Party:
    """A made-up business: its name, street, city, state and ZIP code."""

    name: str
    street: str
    city: str
    state: str
    zip: str

    @property
    def city_line(self) -> str:
        return f"{self.city}, {self.state} {self.zip}"

    @property
    def address(self) -> str:
        return f"{self.street}, {self.city_line}"


class _Maker:
    """Made-up values drawn from one seeded random generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def company(self) -> str:
        return f"{self.rng.choice(_FIRST)} {self.rng.choice(_SECOND)} {self.rng.choice(_SUFFIX)}"

    def party(self, state: str, name: str | None = None) -> _Party:
        city, zip3 = self.rng.choice(_CITIES[state])
        street = (f"{self.rng.randint(10, 9899)} {self.rng.choice(_STREETS)} "
                  f"{self.rng.choice(_STREET_KINDS)}")
        return _Party(name or self.company(), street, city, state, f"{zip3}{self.rng.randint(0, 99):02d}")

    def person(self) -> str:
        return f"{self.rng.choice(_PEOPLE_FIRST)} {self.rng.choice(_PEOPLE_LAST)}"

    def title(self) -> str:
        return self.rng.choice(_TITLES)

    def day(self) -> dt.date:
        return dt.date(2025, 1, 2) + dt.timedelta(days=self.rng.randint(0, 600))

    def date(self, day: dt.date | None = None) -> str:
        day = day or self.day()
        return day.strftime(self.rng.choice(_DATE_FORMATS)).replace(" 0", " ")

    def digits(self, n: int, first: str = "123456789") -> str:
        return self.rng.choice(first) + "".join(self.rng.choice("0123456789") for _ in range(n - 1))

    def ein(self) -> str:
        return f"{self.digits(2)}-{self.digits(7)}"

    def phone(self) -> str:
        return f"({self.digits(3, '2345678')}) {self.digits(3, '2345678')}-{self.digits(4)}"

    def permit(self, state: str) -> str:
        """A registration number in the form the state's numbers take (or a plausible one)."""
        if state == "TX":
            return self.digits(11, "13")
        if state == "PA":
            return self.digits(8)
        if state == "IN":
            return self.digits(10, "0123")
        if state == "MN":
            return self.digits(7)
        if state == "CT":
            return f"{self.digits(7)}-000"
        if state == "WI":
            return f"456-{self.digits(10, '0')}-0{self.rng.randint(1, 9)}"
        if state == "DC":
            return self.digits(11, "1")
        return self.ein()


# --------------------------------------------------------------------------- the forms, filled

Filler = Callable[[_Maker], tuple[Values, Expected, tuple[int, ...]]]


@dataclass(frozen=True)
class _Template:
    file: str
    form_code: str
    state: str | None
    fill: Filler


def _tx(m: _Maker) -> tuple[Values, Expected, tuple[int, ...]]:
    buyer, seller = m.party("TX"), m.party("TX")
    permit, title, date = m.permit("TX"), m.title(), m.date()
    values: Values = {
        "Purchaser": buyer.name, "Purchaser phone": m.phone(), "Purchaser address": buyer.street,
        "Purchaser city, state, ZIP": buyer.city_line, "Permit number": permit, "Seller": seller.name,
        "Seller street": seller.street, "Seller city, state, ZIP": seller.city_line,
        "Items description": m.rng.choice(("Office supplies for resale", "Auto parts and accessories",
                                           "Hardware and tools", "Packaged food items")),
        "Business activity": m.rng.choice(("Retail store", "Wholesale distribution", "Online retailer")),
        "Purchaser title": title, "Purchaser sig date": date}
    expected = {"purchaser_name": buyer.name, "purchaser_address": buyer.address, "purchaser_tax_id": permit,
                "seller_name": seller.name, "seller_address": seller.address, "signer_title": title,
                "signed_date": date, "states": "TX",
                "exempt_reason": "resale"}
    return values, expected, (0,)


def _ny_st120(prefilled_seller: bool) -> Filler:
    def fill(m: _Maker) -> tuple[Values, Expected, tuple[int, ...]]:
        buyer, signer, date, coa = m.party("NY"), m.person(), m.date(), m.ein()
        single = m.rng.random() < 0.3
        values: Values = {
            "purchaser's name": buyer.name, "purchaser's address": buyer.street, "purchaser city": buyer.city,
            "purchaser state": buyer.state, "purchaser zip code": buyer.zip,
            "single-use certificate": "Yes" if single else "No",
            "i am engaged in the business of": m.rng.choice(("retail sales", "wholesale", "jewelry retail")),
            "and principally sell": m.rng.choice(("jewelry", "hardware", "clothing", "gifts")),
            "I certify that I am": "Yes", "coa number 1": coa, "I am purchasing 1": "Yes",
            "print signer's name": signer, "date signed": date}
        expected = {"purchaser_name": buyer.name, "purchaser_address": buyer.address, "purchaser_tax_id": coa,
                    "signer_name": signer, "signed_date": date, "states": "NY", "exempt_reason": "resale",
                    "certificate_type": "single" if single else "blanket"}
        if prefilled_seller:
            expected["seller_name"] = "CROWN FINDINGS CO., INC."
            expected["seller_address"] = "44 W 47TH ST., GF-12, NEW YORK, NY 10036"
        else:
            seller = m.party("NY")
            values.update({"sellers name": seller.name, "seller's address": seller.street,
                           "seller city": seller.city, "seller state": seller.state,
                           "seller zip code": seller.zip})
            expected["seller_name"] = seller.name
            expected["seller_address"] = seller.address
        return values, expected, (0,)
    return fill


def _ny_st121(m: _Maker) -> tuple[Values, Expected, tuple[int, ...]]:
    buyer, seller, signer, date, coa = m.party("NY"), m.party("NY"), m.person(), m.date(), m.ein()
    single = m.rng.random() < 0.3
    values: Values = {
        "name of seller": seller.name, "street address1": seller.street, "city1": seller.city,
        "state1": seller.state, "zip1": seller.zip, "name of purchaser": buyer.name,
        "street address2": buyer.street, "city2": buyer.city, "state2": buyer.state, "zip2": buyer.zip,
        "check one": "Single" if single else "Blanket", "(A)": "Yes", "a authority": coa,
        "type or print the name that appears in the siganture box": signer, "date": date}
    expected = {"purchaser_name": buyer.name, "purchaser_address": buyer.address, "seller_name": seller.name,
                "seller_address": seller.address,
                "purchaser_tax_id": coa, "signer_name": signer, "signed_date": date, "states": "NY",
                "exempt_reason": "manufacturing", "certificate_type": "single" if single else "blanket"}
    return values, expected, (0, 1)


def _ny_st120_1(m: _Maker) -> tuple[Values, Expected, tuple[int, ...]]:
    buyer, seller, signer, date, vid = m.party("NY"), m.party("NY"), m.person(), m.date(), m.ein()
    values: Values = {
        "name of vendor": seller.name, "street address1": seller.street, "city1": seller.city,
        "state1": seller.state, "zip code 1": seller.zip, "name of purchasing contractor": buyer.name,
        "street address2": buyer.street, "city2": buyer.city, "state2": buyer.state, "zip code 2": buyer.zip,
        "enter your sales tax vendor id number": vid,
        "line 2 1": f"{m.rng.choice(('St. Luke Hospital', 'Valley Central School', 'Town Library'))} renovation",
        "box a": "1", "type or print name and title of owner": signer, "date prepared": date}
    expected = {"purchaser_name": buyer.name, "purchaser_address": buyer.address, "seller_name": seller.name,
                "seller_address": seller.address,
                "purchaser_tax_id": vid, "signer_name": signer, "signed_date": date, "states": "NY",
                "exempt_reason": "other"}
    return values, expected, (0, 1)


def _pa(m: _Maker) -> tuple[Values, Expected, tuple[int, ...]]:
    buyer, seller, date, ein = m.party("PA"), m.party("PA"), m.date(), m.ein()
    blanket = m.rng.random() < 0.7
    reason = m.rng.choice(("resale", "resale", "manufacturing", "other"))
    values: Values = {
        "State and Local Sales and Use Tax": "1", "Check one- PA": "9" if blanket else "6",
        "Name of Seller or Lessor": seller.name, "Street": seller.street, "City": seller.city,
        "State": seller.state, "Zip Code": seller.zip, "Name of Purchaser or Lessee": buyer.name,
        "EIN (2)": ein, "Date (2)": date, "Street (2)": buyer.street, "City (2)": buyer.city,
        "State (2)": buyer.state, "Zip Code (2)": buyer.zip}
    expected = {"purchaser_name": buyer.name, "purchaser_address": buyer.address, "seller_name": seller.name,
                "seller_address": seller.address,
                "purchaser_ein": ein, "signed_date": date, "states": "PA", "exempt_reason": reason,
                "certificate_type": "blanket" if blanket else "single"}
    if reason == "resale":
        license_ = m.permit("PA")
        values.update({"3. Check corresponding block below": "1", "License Number": license_})
        expected["purchaser_tax_id"] = license_
    elif reason == "manufacturing":
        values.update({"1. Check corresponding block below": "1",
                       "in performing purchaser's operation of:": "manufacturing"})
    else:
        values.update({"8. Check corresponding block below": "1",
                       "Other": "Purchases for a volunteer fire company"})
    return values, expected, (0,)


#: MI-3372's check boxes by what is printed beside them (their field names say otherwise).
_MI_REASONS = {"resale_retail": ("retail", "no", "resale"), "resale_wholesale": ("irs_code", "Yes", "resale"),
               "agricultural": ("ag_production", "Yes", "agricultural"),
               "manufacturing": ("exempt_ltr", "Yes", "manufacturing"),
               "other": ("other_explain", "Yes", "other")}


def _mi(m: _Maker) -> tuple[Values, Expected, tuple[int, ...]]:
    buyer, seller, signer, date = m.party("MI"), m.party("MI"), m.person(), m.day()
    kind = m.rng.choice(("single", "blanket", "blanket_expires"))
    reason_key = m.rng.choice(sorted(_MI_REASONS))
    values: Values = {"a": {"single": "Yes", "blanket": "c", "blanket_expires": "no"}[kind],
                      "retail": "Off", "vendorname": f"{seller.name}, {seller.address}", "purchaser": buyer.name,
                      "Type": m.rng.choice(("1", "3", "5")), "business.address.2": buyer.street,
                      "city": buyer.city_line, "phone": m.phone(), "Name_typed": signer,
                      "date.signed": m.date(date)}
    expected = {"purchaser_name": buyer.name, "purchaser_address": buyer.address, "seller_name": seller.name,
                "seller_address": seller.address,
                "signer_name": signer, "signed_date": str(values["date.signed"]), "states": "MI",
                "certificate_type": "single" if kind == "single" else "blanket"}
    if kind == "single":
        values["order.no"] = f"PO-{m.digits(5)}"
    elif kind == "blanket_expires":
        expiry = m.date(date.replace(year=date.year + 4, day=min(date.day, 28)))
        values["return.date"] = expiry
        expected["expiry_date"] = expiry
    field, state, reason = _MI_REASONS[reason_key]
    values[field] = state
    expected["exempt_reason"] = reason
    if reason_key == "resale_retail":
        number = m.ein()
        values["Sales_registration_no"] = number
        expected["purchaser_tax_id"] = number
    elif reason_key == "agricultural":
        values["% Agricultural Processing"] = str(m.rng.choice((50, 75, 100)))
    elif reason_key == "manufacturing":
        values["% Industrial Processing"] = str(m.rng.choice((60, 80, 100)))
    elif reason_key == "other":
        values["nonprofit_other"] = "Purchases for a sheltered workshop program"
    return values, expected, (0,)


_IN_REASONS = (("Sales#20to#20Retailer", "resale"), ("Sales#20of#20Manufacturing", "manufacturing"),
               ("Sales#20to#20Nonprofit", "nonprofit"), ("Sales#20to#20Farmers", "agricultural"),
               ("Other#20Type", "other"))


def _in(m: _Maker) -> tuple[Values, Expected, tuple[int, ...]]:
    buyer, signer, title, date, tid = m.party("IN"), m.person(), m.title(), m.date(), m.permit("IN")
    single = m.rng.random() < 0.3
    choice, reason = m.rng.choice(_IN_REASONS)
    values: Values = {
        "Name of Purchaser": buyer.name, "Business  Address": buyer.street, "City": buyer.city,
        "State": buyer.state, "ZIP Code": buyer.zip, "TID": tid,
        "Type of Request": "Single#20Purchase" if single else "Blanket#20Pruchase", "Type of Exemption": choice,
        "Date": date, "Printed Name": signer, "Title": title}
    if reason == "other":
        values["Other"] = "Purchases for a public library foundation"
    expected = {"purchaser_name": buyer.name, "purchaser_address": buyer.address, "purchaser_tax_id": tid,
                "signer_name": signer, "signer_title": title, "signed_date": date, "states": "IN",
                "exempt_reason": reason, "certificate_type": "single" if single else "blanket"}
    return values, expected, (0,)


def _ma(m: _Maker) -> tuple[Values, Expected, tuple[int, ...]]:
    buyer, account = m.party("MA"), m.ein()
    business = m.rng.choice(("Retail gift shop", "Hardware store", "Wholesale distributor"))
    values: Values = {"Text1": (buyer.name, account, buyer.street, buyer.city, buyer.state, buyer.zip, business)}
    expected = {"purchaser_name": buyer.name, "purchaser_address": buyer.address, "purchaser_tax_id": account,
                "seller_name": "Spoontiques, Inc.",
                "seller_address": "111 Island St, Stoughton, MA 02072", "states": "MA", "exempt_reason": "resale",
                "certificate_type": "blanket"}
    return values, expected, (0,)


def _ct(m: _Maker) -> tuple[Values, Expected, tuple[int, ...]]:
    buyer, seller, title, date, number = m.party("CT"), m.party("CT"), m.title(), m.date(), m.permit("CT")
    values: Values = {
        "vendor_name": seller.name, "vendor_address": seller.street, "vendor_city_state_zip": seller.city_line,
        "purchaser_name": buyer.name, "purchaser_address": buyer.street,
        "purchaser_city_state_zip": buyer.city_line, m.rng.choice(("chkbx01", "chkbx02")): "Yes",
        "product_sold": m.rng.choice(("giftware", "hardware", "office supplies")), "txtbx02": "CT",
        "txtbx03": number, "equipment_description": "Merchandise for resale", "signers_title": title,
        "signed_date": date}
    expected = {"purchaser_name": buyer.name, "purchaser_address": buyer.address, "seller_name": seller.name,
                "seller_address": seller.address,
                "purchaser_tax_id": number, "signer_title": title, "signed_date": date, "states": "CT",
                "exempt_reason": "resale"}
    return values, expected, (0,)


def _dc(m: _Maker) -> tuple[Values, Expected, tuple[int, ...]]:
    buyer, title, date, number = m.party("DC"), m.title(), m.date(), m.permit("DC")
    values: Values = {"PURCHASER": buyer.name, "PURCHASER'S ADDRESS": buyer.street,
                      "CITY, STATE, ZIP 2": buyer.city_line, "DC CERT OF REGISTRATION #": number,
                      "TITLE": title, "DATE": date}
    # The seller's side (name, address, FEIN) is prefilled in the file.
    expected = {"purchaser_name": buyer.name, "purchaser_address": buyer.address, "purchaser_tax_id": number,
                "seller_name": "SPOONTIQUES, INC.",
                "seller_address": "111 ISLAND ST, STOUGHTON, MA 02072", "signer_title": title, "signed_date": date,
                "states": "DC", "exempt_reason": "resale"}
    return values, expected, (0,)


_MTC_ROW = re.compile(r"^State Registration Sellers Permit or ID Number of Purchaser([A-Z]{2})\d*$")


@functools.cache
def _mtc_rows() -> tuple[tuple[str, str, float, float], ...]:
    """The MTC form's state rows: (state, field name, y, x) in reading order."""
    doc = pymupdf.open(REAL_FORMS / "MTC-Uniform-Sales-Use-Cert-2016-spoontiques.pdf")
    rows = [(match.group(1), w.field_name, round(w.rect.y0 / 6), w.rect.x0)
            for w in doc[0].widgets() if (match := _MTC_ROW.match(w.field_name or ""))]
    return tuple(sorted(rows, key=lambda r: (r[2], r[3])))


def _mtc(m: _Maker) -> tuple[Values, Expected, tuple[int, ...]]:
    rows = [r for r in _mtc_rows() if r[0] in _CITIES]
    chosen = sorted(m.rng.sample(rows, m.rng.randint(1, 3)), key=lambda r: (r[2], r[3]))
    buyer, title, date = m.party(chosen[0][0]), m.title(), m.date()
    values: Values = {"Name of Firm Buyer": buyer.name, "Address_2": buyer.street, "1": buyer.city_line,
                      m.rng.choice(("Wholesaler", "Retailer")): "On",
                      "Description of Business": m.rng.choice(("Retail gift shop", "Online retailer")),
                      "Title": title, "Date": date}
    numbers = {}
    for state, name, _y, _x in chosen:
        numbers[state] = values[name] = m.permit(state)
    expected = {"purchaser_name": buyer.name, "purchaser_address": buyer.address,
                "seller_name": "Spoontiques, Inc.",
                "seller_address": "111 Island St, Stoughton, MA 02072", "states": ", ".join(numbers),
                "purchaser_tax_id": numbers[chosen[0][0]], "signer_title": title, "signed_date": date,
                "exempt_reason": "resale"}
    return values, expected, (0,)


_TEMPLATES = (
    _Template("TX-01-339.pdf", "TX-01-339", "TX", _tx),
    _Template("NY-ST-120.pdf", "NY-ST-120", "NY", _ny_st120(prefilled_seller=True)),
    _Template("NY-ST-120-rev-2010.pdf", "NY-ST-120", "NY", _ny_st120(prefilled_seller=False)),
    _Template("NY-ST-121.pdf", "NY-ST-121", "NY", _ny_st121),
    _Template("NY-ST-120.1.pdf", "NY-ST-120.1", "NY", _ny_st120_1),
    _Template("PA-REV-1220.pdf", "PA-REV-1220", "PA", _pa),
    _Template("MI-3372.pdf", "MI-3372", "MI", _mi),
    _Template("IN-ST-105.pdf", "IN-ST-105", "IN", _in),
    _Template("MA-ST-4.pdf", "MA-ST-4", "MA", _ma),
    _Template("CT-resale-certificate.pdf", "CT-RESALE", "CT", _ct),
    _Template("DC-OTR-368-2012.pdf", "DC-OTR-368", "DC", _dc),
    _Template("MTC-Uniform-Sales-Use-Cert-2016-spoontiques.pdf", "MTC-UNIFORM", None, _mtc),
)

# --------------------------------------------------------------------------- documents that are no form


def _letter(m: _Maker) -> tuple[bytes, Expected]:
    """A business letter on letterhead claiming exemption from sales tax."""
    state = m.rng.choice(("TX", "NY", "OH", "IL", "GA"))
    buyer, seller, signer, title, date = m.party(state), m.party(state), m.person(), m.title(), m.date()
    number = m.permit(state)
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((72, 70), buyer.name.upper(), fontsize=15, fontname="hebo")
    page.insert_text((72, 88), f"{buyer.street} | {buyer.city_line} | {m.phone()}", fontsize=9)
    page.draw_line((72, 96), (540, 96), width=0.8)
    body = (f"{date}\n\n{seller.name}\nAttn: Accounts Receivable\n{seller.street}\n{seller.city_line}\n\n"
            f"Re: Sales tax exemption\n\nDear Sir or Madam,\n\n"
            f"Please accept this letter as notice that {buyer.name} purchases the merchandise it buys from "
            f"you for resale in the regular course of its business. We hold {state} sales tax permit number "
            f"{number}, and we ask that you do not charge sales tax on our orders.\n\n"
            "Please keep this letter on file and contact us if you need anything further.\n\n"
            f"Sincerely,\n\n\n{signer}\n{title}\n{buyer.name}")
    page.insert_textbox(pymupdf.Rect(72, 120, 540, 740), body, fontsize=11, fontname=m.rng.choice(("tiro", "helv")))
    return doc.tobytes(), {"purchaser_name": buyer.name}


_ENTITIES = ("City of {c}", "{c} Unified School District", "{c} Public Library", "County of {c}",
             "St. Mark's Church of {c}", "{c} Community College")


def _own_certificate(m: _Maker) -> tuple[bytes, Expected]:
    """An entity's own exemption certificate (not a state form)."""
    state = m.rng.choice(("TX", "NY", "PA", "IL", "OH"))
    place = m.party(state)
    entity = m.rng.choice(_ENTITIES).format(c=place.city)
    signer, title, date = m.person(), m.rng.choice(("Finance Director", "Business Manager", "Treasurer")), m.date()
    number = f"E-{m.digits(6)}"
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.draw_rect(pymupdf.Rect(40, 40, 572, 752), width=2)
    page.insert_text((150, 100), "CERTIFICATE OF TAX EXEMPTION", fontsize=18, fontname="tibo")
    lines = (f"Issued by: {entity}", f"Address: {place.address}", f"Exemption number: {number}", "",
             "To whom it may concern:", "",
             f"{entity} is a governmental / nonprofit body and is exempt from state and local",
             "sales and use tax on purchases of tangible personal property made for its own use.",
             "Purchases are paid from the entity's own funds.", "",
             f"Authorized official: {signer}", f"Title: {title}", f"Date: {date}")
    for i, line in enumerate(lines):
        page.insert_text((72, 160 + 22 * i), line, fontsize=11, fontname="tiro")
    return doc.tobytes(), {"purchaser_name": entity}


# --------------------------------------------------------------------------- comparing what was read

_DATE_READ = ("%m/%d/%Y", "%m-%d-%Y", "%B %d, %Y", "%b %d, %Y", "%Y-%m-%d", "%m/%d/%y", "%m-%d-%y", "%d %B %Y",
              "%B %d %Y")
_DATE_FIELDS = ("signed_date", "expiry_date")


def _norm(text: str) -> str:
    """A value as compared: lower case, '&' as 'and', only letters and digits."""
    return "".join(ch for ch in text.replace("&", "and").lower() if ch.isalnum())


def parse_date(text: str) -> dt.date | None:
    """``text`` as a date when it is written in one of the usual US ways, else ``None``."""
    text = " ".join(text.replace(".", " ").split()).strip(" ,")
    for fmt in _DATE_READ:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def same_value(field: str, expected: str, read: str) -> bool:
    """Whether ``read`` is ``expected`` for ``field``: compared without case, spaces and punctuation;
    dates as dates; ``states`` as a set of codes."""
    if field in _DATE_FIELDS:
        want, got = parse_date(expected), parse_date(read)
        if want is not None and got is not None:
            return want == got
    if field == "states":
        return ({c for c in re.split(r"[\s,;/]+", expected.upper()) if c}
                == {c for c in re.split(r"[\s,;/]+", read.upper()) if c})
    return _norm(expected) == _norm(read)


# --------------------------------------------------------------------------- the set


@dataclass(frozen=True)
class ScanItem:
    """One document of the set: how it was made and what should be read from it. ``form_code`` and
    ``state`` are ``None`` for a document that is not a known form (and ``state`` for a multistate form)."""

    index: int
    name: str  # the scan's file name; its suffix says the file type
    kind: str  # "form", "letter" or "own certificate"
    source: str  # the blank form's file in ../shared/real-forms, or "" for a drawn document
    form_code: str | None
    state: str | None
    expected_items: tuple[tuple[str, str], ...]
    pages: tuple[int, ...]  # the pages of the filled document that were scanned (0 = first)
    seed: int
    dpi: int
    skew: float
    turn: int
    noise: float
    quality: int
    lighting: float
    light_from: tuple[float, float]
    paper: tuple[int, int, int] | None
    fontname: str

    @property
    def expected(self) -> dict[str, str]:
        """Field name -> the value printed on the document."""
        return dict(self.expected_items)

    @property
    def transform(self) -> str:
        """How the scan was made, in words (for reports)."""
        parts = [f"{self.dpi} dpi", f"skew {self.skew:+.1f}"]
        if self.turn:
            parts.append(f"turned {self.turn}")
        if self.lighting:
            parts.append(f"lighting {self.lighting:.2f}")
        parts.append("colour" if self.paper else "grey")
        return ", ".join(parts)

    def filled(self) -> bytes:
        """The filled document before it was scanned (a PDF whose text layer holds the values)."""
        return _filled(self)

    def scan(self) -> bytes:
        """The scan's bytes (the file named :attr:`name`)."""
        return _scanned(self)


@functools.cache
def _filled(item: ScanItem) -> bytes:
    m = _Maker(random.Random(item.seed))
    if item.kind != "form":
        return (_letter(m) if item.kind == "letter" else _own_certificate(m))[0]
    template = next(t for t in _TEMPLATES if t.file == item.source)
    values, _expected, _pages = template.fill(m)
    doc = pymupdf.open(REAL_FORMS / template.file)
    draw_fields(doc, values, fontname=item.fontname)
    return doc.tobytes(garbage=3, deflate=True)


def _scanned(item: ScanItem) -> bytes:
    pdf = item.filled()
    suffix = item.name.rsplit(".", 1)[1]
    fmt = {"jpg": "JPEG", "png": "PNG", "tif": "TIFF", "pdf": "JPEG"}[suffix]
    scans: list[Scan] = [
        scan(pdf, page=page, dpi=item.dpi, skew=item.skew, turn=item.turn, noise=item.noise,
             quality=item.quality, fmt=fmt, lighting=item.lighting, light_from=item.light_from,
             paper=item.paper, seed=item.seed + page)
        for page in item.pages]
    if suffix == "pdf":
        return image_pdf(scans)
    if suffix == "tif" and len(scans) > 1:
        return multipage_tiff(scans)
    return scans[0].data


_PAPERS = ((250, 246, 235), (244, 240, 226), (236, 240, 246), (250, 250, 250))


def _item(index: int, seed: int) -> ScanItem:
    item_seed = seed * 1000 + index
    rng = random.Random(f"scan {item_seed}")  # how it is scanned; the values come from item_seed
    m = _Maker(random.Random(item_seed))
    if index % 6 == 5:
        kind = "letter" if index % 12 == 5 else "own certificate"
        template = None
        expected = (_letter(m) if kind == "letter" else _own_certificate(m))[1]
        pages: tuple[int, ...] = (0,)
    else:
        kind = "form"
        template = _TEMPLATES[(index - index // 6) % len(_TEMPLATES)]
        _values, expected, pages = template.fill(m)
    turn = rng.choices((0, 90, 270, 180), weights=(70, 10, 10, 10))[0]
    if len(pages) > 1:
        suffix = rng.choice(("pdf", "tif"))
    else:
        suffix = rng.choices(("jpg", "png", "tif", "pdf"), weights=(55, 15, 10, 20))[0]
    lit = rng.random() < 0.5
    colour = rng.random() < 0.4
    stem = template.form_code if template else kind.replace(" ", "-")
    return ScanItem(
        index=index, name=f"{index + 1:02d}-{stem}.{suffix}", kind=kind,
        source=template.file if template else "", form_code=template.form_code if template else None,
        state=template.state if template else None, expected_items=tuple(sorted(expected.items())),
        pages=pages, seed=item_seed, dpi=rng.choice((150, 200, 200, 240, 300, 300)),
        skew=round(rng.uniform(-3.5, 3.5), 2), turn=turn, noise=round(rng.uniform(0.03, 0.14), 3),
        quality=rng.randint(45, 90), lighting=round(rng.uniform(0.15, 0.4), 2) if lit else 0.0,
        light_from=(round(rng.random(), 2), round(rng.random(), 2)),
        paper=rng.choice(_PAPERS) if colour else None, fontname=rng.choice(("helv", "tiro", "cour")))


def scan_set(seed: int = SEED, size: int = SIZE) -> list[ScanItem]:
    """The set: ``size`` items made from ``seed`` (every sixth is not a known form: a letter or an
    entity's own certificate, in turn; the forms take the real forms in turn). The same arguments give
    the same items; the scans themselves are made when :meth:`ScanItem.scan` is called."""
    return [_item(i, seed) for i in range(size)]
