"""Domain errors; the API turns each into an RFC 9457 problem document with its status."""


class DomainError(Exception):
    status = 400
    title = "Invalid request"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    status = 409
    title = "Conflict with the record's state"


class ValidationFailed(DomainError):
    status = 422
    title = "Validation failed"


class ImmutableRecord(Conflict):
    """A final financial record (sent invoice, posted entry, recorded payment) cannot be changed in place."""

    title = "The record is final and cannot be changed"


class PlanLimitReached(DomainError):
    """The company's plan does not allow one more of something; the detail names the plan and the limit."""

    status = 402
    title = "Plan limit reached"


class InvalidMoney(ValidationFailed, ValueError):
    """An amount or currency the books cannot hold exactly (also a ValueError, like ez360.core.money.MoneyError)."""
