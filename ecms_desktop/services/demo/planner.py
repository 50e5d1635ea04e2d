"""Drawing the demo's customers and certificates from one seeded random generator.

Customers get a kind (reseller, manufacturer, nonprofit, ...), a name, addresses and a signer, a few
of them a parent. Each certificate is drawn for the status it should have as of the demo date: its
form and states (the customer's own state's form mostly, SST or MTC for some), and dates whose expiry,
decided by the same :class:`~ecms_desktop.services.certificates.service.ExpiryContext` the rest of the
program uses, gives that status.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from ecms_desktop.models import ExemptReason, ReviewState, Status, customer_number_key
from ecms_desktop.rules import PermitFormat, RulesPack
from ecms_desktop.rules.pack import MTC_FORM_CODE, SST_FORM_CODE, FormRule
from ecms_desktop.services.certificates.service import ExpiryContext
from ecms_desktop.services.core.expiry import certificate_status
from ecms_desktop.services.demo.permits import PermitNumbers
from ecms_desktop.services.demo.plans import CertPlan, CustomerPlan, DemoOptions, LinePlan
from ecms_desktop.services.demo.reference import (
    APPROVED_TARGETS,
    ARCHIVE_REASONS,
    CITIES,
    COMMODITY_CODES,
    COMPANIES,
    FIRST_NAMES,
    FIRST_TARGETS,
    KIND_REASON,
    MFG,
    PLACES,
    PRODUCT_CODES,
    REJECT_REASONS,
    REVIEW_WEIGHTS,
    SAINTS,
    STREETS,
    SUFFIX_BIZ,
    SURNAMES,
    TITLES,
    TRADES,
)


class Planner:
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
        for city in CITIES:
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
        self.customers: list[CustomerPlan] = []
        #: A customer keeps its permit number in a state across its certificates.
        self._permits_held: dict[tuple[int, str, str], str] = {}

    # -- customers ----------------------------------------------------------------------------

    def plan_customers(self, count: int) -> list[CustomerPlan]:
        rng = self.rng
        shares = [c["share"] for c in COMPANIES]
        next_number = 10001
        by_company: dict[int, list[int]] = {}
        for i in range(count):
            company = i if i < len(COMPANIES) else rng.choices(range(len(COMPANIES)), shares)[0]
            spec = COMPANIES[company]
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
        cities = self._cities_by_state.get(state) or [rng.choice(CITIES)]
        city, st, zip_code, area, _county = rng.choice(cities)
        zip_code = f"{int(zip_code) + rng.randrange(0, 40):05d}"
        line1 = f"{rng.randint(10, 9899)} {rng.choice(STREETS)}"
        if rng.random() < 0.15:
            line1 += f", {rng.choice(('Suite', 'Unit', 'Bldg'))} {rng.randint(2, 450)}"
        return (line1, city, st, zip_code), f"({area}) 555-{rng.randint(100, 199):04d}"

    def _customer(self, index: int, company: int, kind: str, number: str, states: Sequence[str]) -> CustomerPlan:
        rng = self.rng
        bill, phone = self._address(states)
        city, state = bill[1], bill[2]
        surname, place = rng.choice(SURNAMES), rng.choice(PLACES)
        trade = rng.choice(TRADES)
        state_name = self.rules.state(state).name
        if kind == "reseller":
            partner = rng.choice([n for n in SURNAMES if n != surname])
            name = rng.choice((f"{surname} {trade[0]}", f"{place} {trade[0]}", f"{surname} & {partner} "
                               f"{trade[0]}")) + f" {rng.choice(SUFFIX_BIZ)}"
        elif kind == "manufacturer":
            trade = rng.choice(MFG)
            name = f"{rng.choice((surname, place))} {trade[0]}"
            if not name.endswith("."):
                name += f" {rng.choice(SUFFIX_BIZ)}"
        elif kind == "nonprofit":
            name = rng.choice((f"{place} Food Bank", f"Friends of the {city} Public Library",
                               f"{city} Habitat for Humanity", f"{place} Community Health Clinic",
                               f"{city} Youth Soccer Association", f"{place} Animal Rescue League"))
            trade = ("", "Charitable organization (501(c)(3))", "Supplies used in the organization's exempt purpose")
        elif kind == "religious":
            name = rng.choice((f"{rng.choice(SAINTS)} Lutheran Church", f"First Baptist Church of {city}",
                               f"{rng.choice(SAINTS)} Catholic Parish", f"{city} Friends Meeting"))
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
            name = rng.choice((f"{place} Data Center {rng.choice(SUFFIX_BIZ)}",
                               f"{place} Broadcasting {rng.choice(SUFFIX_BIZ)}",
                               f"{surname} Film Productions {rng.choice(SUFFIX_BIZ)}"))
            trade = ("", "Qualified data center / media production", "Equipment qualifying for the state's exemption")
        org = kind in ("nonprofit", "religious", "educational", "government")
        domain = "-".join(re.findall(r"[a-z0-9]+", name.lower().replace("&", "and"))[:3])
        mailbox = rng.choice(("ap", "purchasing", "tax", "accounting", "admin"))
        email = f"{mailbox}@{domain}.example.{'org' if org else 'com'}"
        ship = bill
        if rng.random() < 0.3:
            ship, _ = self._address(states, prefer=state if rng.random() < 0.4 else None)
        first = rng.choice(FIRST_NAMES)
        middle = f" {chr(rng.randrange(65, 91))}." if rng.random() < 0.4 else ""
        contact = (f"{first}{middle} {rng.choice(SURNAMES)}", rng.choice(TITLES[kind]))
        owner = rng.choice(FIRST_NAMES).lower() + "." + rng.choice(SURNAMES).lower()
        owner_domain = COMPANIES[company]["reply_to_email"].split("@", 1)[1]
        return CustomerPlan(index, company, kind, number, name, email, bill, ship, phone,
                             f"{owner}@{owner_domain}", None, trade, contact)

    def _subsidiary(self, index: int, company: int, number: str, parent: CustomerPlan) -> CustomerPlan:
        rng = self.rng
        plan = self._customer(index, company, parent.kind, number, COMPANIES[company]["states"])
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

    def plan_certificates(self, count: int) -> Iterator[CertPlan]:
        rng = self.rng
        n_customers = len(self.customers)
        for i in range(count):
            customer = self.customers[i] if i < n_customers else rng.choice(self.customers)
            if i < len(FIRST_TARGETS):
                target = FIRST_TARGETS[i]
            else:
                review = rng.choices([r for r, _ in REVIEW_WEIGHTS], [w for _, w in REVIEW_WEIGHTS])[0]
                target = {ReviewState.PENDING.value: Status.PENDING_REVIEW, ReviewState.REJECTED.value: Status.REJECTED,
                          ReviewState.ARCHIVED.value: Status.ARCHIVED}.get(review) or rng.choices(
                    [s for s, _ in APPROVED_TARGETS], [w for _, w in APPROVED_TARGETS])[0]
            yield self._certificate(i, customer, target)

    def _reason_for(self, customer: CustomerPlan) -> str:
        reason = KIND_REASON[customer.kind]
        if customer.kind == "manufacturer" and self.rng.random() < 0.35:
            reason = ExemptReason.RESALE.value  # buys components it resells in its products
        return reason

    def _template(self, customer: CustomerPlan, reason: str, need_expiry: bool
                  ) -> tuple[FormRule, list[str], str]:
        """Form, states and reason: the customer's own state's form mostly; SST / MTC for some."""
        rng = self.rng
        if need_expiry:
            pool = self.expiring_pool.get(reason) or self.expiring_pool[ExemptReason.RESALE.value]
            if reason not in self.expiring_pool:
                reason = ExemptReason.RESALE.value
            near = [p for p in pool if p[0] in (customer.ship[2], customer.bill[2])]
            registered = [p for p in pool if p[0] in COMPANIES[customer.company]["states"]]
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
        candidates = [home, customer.bill[2], customer.ship[2], *rng.sample(COMPANIES[customer.company]["states"], 3)]
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

    def _certificate(self, index: int, customer: CustomerPlan, target: Status) -> CertPlan:
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
        if rng.random() < 0.2 or "effective_date" in form.fields_for(reason):
            effective, signed = eff, eff - dt.timedelta(days=rng.randint(0, 12))
        review_reason = ""
        if review == ReviewState.REJECTED.value:
            review_reason = rng.choice(REJECT_REASONS)
        elif review == ReviewState.ARCHIVED.value:
            review_reason = rng.choice(ARCHIVE_REASONS)
        home = states[0] if customer.bill[2] not in states else customer.bill[2]
        document = form.state_document
        if document is not None and document.number is not None and document.number.pattern:
            # A state-issued document carries its own number (an Illinois E number, a Maryland card).
            tax_id = self._permit(customer.index, home, document.number)
        else:
            tax_id = self._permit(customer.index, home) if self.rules.state(home).taxes_sales else ""
        lines = [LinePlan(s, tax_id if s == home else self._permit(customer.index, s)) for s in states]
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
            products = sorted(rng.sample(PRODUCT_CODES, rng.randint(1, 3)))
        elif roll < 0.035:
            commodities = sorted(rng.sample(COMMODITY_CODES, rng.randint(1, 3)))
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
        if override is None and any(self.rules.expiry_rule(line.state, form.code, reason).printed for line in lines):
            # The state prints the expiry on the document (a reseller permit, a resale certificate it
            # issues): the clerk enters the date printed there, which is the rules' date on a true copy.
            printed = self._expiry(customer.company, form, reason, [ln.state for ln in lines], effective or signed)[0]
            if printed is not None:
                override, override_reason = printed, f"As printed on the {form.name}."
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
        return CertPlan(index, customer.index, customer.company, form, reason, lines, review, review_reason,
                         signed, effective, "single_use" if single else "blanket", po, number, tax_id,
                         f"{rng.randint(10, 99)}-{rng.randint(1000000, 9999999)}", detail, products, commodities,
                         percent, amount, override, override_reason, min(dates) if dates else None, has_document,
                         notes)

    def _permit(self, customer: int, state: str, document: PermitFormat | None = None) -> str:
        """The customer's number in ``state``: its permit, or the number of a state-issued document
        (``document``: its format), the same on every certificate."""
        key = (customer, state, document.label if document is not None else "")
        number = self._permits_held.get(key)
        if number is None:
            number = self._permits_held[key] = self.permits.make(state, self.rng, document)
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
