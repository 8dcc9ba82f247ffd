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
