"""The desk's customer part: the Customers window, a customer's exemption matrix (from the list or for the
selected certificate's customer), Certificate > New… and the report of customers buying exempt without a
valid certificate."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction

from ecms_desktop.services.customers.service import CustomerInfo
from ecms_desktop.services.intake.inbox import InboxItem
from ecms_desktop.views.customers.list_view import CustomersView
from ecms_desktop.views.customers.matrix_view import CustomerView
from ecms_desktop.views.customers.new_certificate_dialog import NewCertificateDialog
from ecms_desktop.views.main_window.tools import ToolsMixin
from ecms_desktop.views.operations import customers


class CustomersMixin(ToolsMixin):
    """Customers, their exemption matrix and new certificates."""

    act_customers: QAction
    act_customer_of_selected: QAction
    act_uncovered_report: QAction
    act_new_certificate: QAction
    #: The New certificate dialog last opened (None before).
    new_certificate_dialog: NewCertificateDialog | None = None

    def _build_customer_actions(self, action: Callable[..., QAction]) -> None:
        """The customer actions, made with the window's action factory (``MainWindow._action``)."""
        self.act_customers = action("&Customers…", self.open_customers, "Ctrl+Shift+C", name="actCustomers",
                                    tip="List, search, add, edit and merge customers")
        self.act_customer_of_selected = action(
            "Customer of the selected &certificate…", self.open_customer_of_selected, None,
            name="actCustomerOfSelected", tip="The exemption matrix of the selected certificate's customer")
        self.act_uncovered_report = action(
            "Customers &without a valid certificate…", self.export_uncovered_report, None, name="actUncoveredReport",
            tip="Export the customers buying exempt where no valid certificate covers them (Excel or CSV)")
        self.act_new_certificate = action("&New…", self.open_new_certificate, "Ctrl+N", name="actNewCertificate",
                                          tip="A new certificate of a customer from a file or an inbox document")

    def _update_customer_actions(self) -> None:
        has_company = self.db is not None and self.company_id is not None
        for act in (self.act_customers, self.act_uncovered_report, self.act_new_certificate):
            act.setEnabled(has_company)
        self.act_customer_of_selected.setEnabled(has_company and self.current_detail is not None)

    def open_customers(self) -> None:
        """Customers: the company's customer list."""
        if self.db is None or self.company_id is None:
            return
        view = CustomersView(self.db, self.runner, self.company_id, as_of=self.as_of, settings=self.settings,
                             parent=self)
        view.customer_opened.connect(self.open_customer)
        view.changed.connect(self.refresh)
        self._show_tool("customers", view)
        view.refresh()

    def open_customer(self, customer_id: int) -> None:
        """A customer's details and exemption matrix as of the desk's date."""
        if self.db is None:
            return
        view = CustomerView(self.db, self.rules, self.runner, customer_id, as_of=self.as_of, parent=self)
        view.review_requested.connect(self._on_customer_review_requested)
        view.new_certificate_requested.connect(self.open_new_certificate)
        view.changed.connect(self.refresh)
        self._show_tool("customer", view)
        view.refresh()

    def open_customer_of_selected(self) -> None:
        """The exemption matrix of the selected certificate's customer."""
        if self.current_detail is not None:
            self.open_customer_of_certificate(self.current_detail.id)

    def open_customer_of_certificate(self, certificate_id: int) -> None:
        """The exemption matrix of a certificate's customer (looked up off the GUI thread)."""
        if self.db is None:
            return
        customers.customer_of_certificate(self.db, certificate_id).success(self.open_customer) \
            .failure(self._on_background_error).run(self.runner)

    def _on_customer_review_requested(self, certificate_id: int) -> None:
        self.request_select(certificate_id)
        self.raise_()
        self.activateWindow()

    def open_new_certificate(self, customer_id: int | None = None, state: str = "") -> None:
        """Certificate > New…: the customers and the inbox are read, then the dialog opens (with the
        customer and state given, from a matrix row)."""
        db, company_id = self.db, self.company_id
        if db is None or company_id is None:
            return

        def listed(customers_list: list[CustomerInfo]) -> None:
            customers.list_inbox(db, company_id).success(lambda inbox: opened(customers_list, inbox)) \
                .failure(self._on_background_error).run(self.runner)

        def opened(customers_list: list[CustomerInfo], inbox: list[InboxItem]) -> None:
            dialog = NewCertificateDialog(db, self.rules, self.runner, company_id, as_of=self.as_of,
                                          customers_list=customers_list, inbox=inbox, customer_id=customer_id,
                                          state=state, parent=self)
            dialog.certificate_created.connect(self._on_certificate_created)
            self.new_certificate_dialog = dialog
            dialog.open()

        customers.list_customers(db, company_id).success(listed).failure(self._on_background_error).run(self.runner)

    def _on_certificate_created(self, certificate_id: int) -> None:
        self.refresh_inbox()
        self.request_select(certificate_id)  # the grid is read again and the new certificate selected for review
        view = self.tools.get("customer")
        if isinstance(view, CustomerView):
            view.refresh()

    def export_uncovered_report(self) -> None:
        """Customers > Customers without a valid certificate: the Customers window opens and asks where to
        write the report (as of the desk's date)."""
        self.open_customers()
        view = self.tools.get("customers")
        if isinstance(view, CustomersView):
            view.export_report_dialog()
