"""Every exception the runtime raises, with DBOS's error codes and an HTTP status for each.

The hierarchy, as DBOS Transact for Python names it (``from <package>.durable import error``)::

    Exception
    └── DBOSException                          message, dbos_error_code, status_code
        ├── DBOSInitializationError            launch failed, schema too old, not configured
        │   └── DBOSConfigError                bad DBOSConfig (ours)
        ├── DBOSConflictingWorkflowError       an ID reused by another workflow function
        ├── DBOSQueueDeduplicatedError         an enqueue's deduplication ID is held by an active workflow
        ├── DBOSStepTimeoutError               a step attempt ran past its timeout_seconds
        ├── DBOSRecoveryError                  a workflow could not be recovered
        ├── DBOSWorkflowFunctionNotFoundError  recovery found no code for a recorded name
        ├── DBOSNonExistentWorkflowError       no workflow with that ID
        ├── MaxRecoveryAttemptsExceededError   dead-lettered after too many recoveries
        ├── DBOSMaxStepRetriesExceeded         a step failed on every attempt
        ├── DBOSUnexpectedStepError            replay met a different step than was recorded
        ├── DBOSAwaitedWorkflowCancelledError  the awaited workflow was cancelled
        ├── DBOSNotAuthorizedError             the caller lacks every role a function requires
        ├── DBOSStreamTimeoutError             no value arrived on a stream in time (or it ended first)
        ├── DBOSStreamNondeterminismError      two stream reads of one workflow overlapped
        ├── DBOSNotLaunchedError               durable work asked for before launch could happen (ours)
        ├── DBOSSerializationError             a value cannot be checkpointed (ours)
        ├── DBOSFencedError                    this process lost ownership of the workflow (ours)
        └── DBOSDatabaseUnavailableError       the database stayed unreachable past the retries (ours)
    BaseException
    └── DBOSBaseException                      not meant to be caught by user code
        ├── DBOSWorkflowCancelledError
        ├── DBOSShutdownError                  this process stops; the workflow stays PENDING (ours)
        └── DBOSWorkflowConflictIDError
"""

from __future__ import annotations

from enum import Enum


class DBOSErrorCode(Enum):
    """DBOS Transact's numeric error codes, so handlers written for DBOS keep working."""

    ConflictingIDError = 1
    RecoveryError = 2
    InitializationError = 3
    WorkflowFunctionNotFound = 4
    NonExistentWorkflowError = 5
    MaxRecoveryAttemptsExceeded = 6
    MaxStepRetriesExceeded = 7
    NotAuthorized = 8
    ConflictingWorkflowError = 9
    WorkflowCancelled = 10
    UnexpectedStep = 11
    QueueDeduplicated = 12
    AwaitedWorkflowCancelled = 13
    StreamTimeout = 16
    StreamNondeterminism = 17
    StepTimeout = 18
    SerializationError = 100
    Fenced = 101
    NotLaunched = 102
    DatabaseUnavailable = 103


def _format(message: str, code: int | str | None) -> str:
    return f"DBOS Error {code}: {message}" if code else f"DBOS Error: {message}"


class DBOSException(Exception):
    """Base of the runtime's errors; user code may raise it too, with its own code and HTTP status."""

    def __init__(
        self, message: str, dbos_error_code: int | str | None = None, status_code: int | None = None
    ) -> None:
        self.message = message
        self.dbos_error_code = dbos_error_code
        self.status_code = status_code
        super().__init__(message)

    def __str__(self) -> str:
        return _format(self.message, self.dbos_error_code)


class DBOSBaseException(BaseException):
    """Errors that user code should not swallow with ``except Exception``."""

    def __init__(self, message: str, dbos_error_code: int | None = None) -> None:
        self.message = message
        self.dbos_error_code = dbos_error_code
        self.status_code: int | None = None
        super().__init__(message)

    def __str__(self) -> str:
        return _format(self.message, self.dbos_error_code)


class DBOSInitializationError(DBOSException):
    def __init__(self, message: str) -> None:
        super().__init__(message, DBOSErrorCode.InitializationError.value, 503)


class DBOSConfigError(DBOSInitializationError):
    """A ``DBOSConfig`` key is unknown or its value is out of range."""


class DBOSNotLaunchedError(DBOSException):
    def __init__(self, message: str) -> None:
        super().__init__(message, DBOSErrorCode.NotLaunched.value, 503)


class DBOSConflictingWorkflowError(DBOSException):
    def __init__(self, workflow_id: str, message: str | None = None) -> None:
        super().__init__(
            f"Conflicting workflow invocation with the same ID ({workflow_id}): {message}",
            DBOSErrorCode.ConflictingWorkflowError.value,
            409,
        )


class DBOSQueueDeduplicatedError(DBOSException):
    """An enqueue named a deduplication ID that a waiting or running workflow of the queue holds."""

    def __init__(self, workflow_id: str, queue_name: str, deduplication_id: str) -> None:
        self.workflow_id = workflow_id
        self.queue_name = queue_name
        self.deduplication_id = deduplication_id
        super().__init__(
            f"Workflow {workflow_id} was deduplicated due to an existing workflow in queue {queue_name} "
            f"with deduplication ID {deduplication_id}.",
            DBOSErrorCode.QueueDeduplicated.value,
            409,
        )


class DBOSStepTimeoutError(DBOSException):
    """A step attempt ran longer than its ``timeout_seconds``."""

    def __init__(self, step_name: str, timeout_seconds: float) -> None:
        self.step_name = step_name
        self.timeout_seconds = timeout_seconds
        super().__init__(
            f"Step {step_name} was cancelled after exceeding its timeout of {timeout_seconds} seconds",
            DBOSErrorCode.StepTimeout.value,
        )


class DBOSRecoveryError(DBOSException):
    def __init__(self, workflow_id: str, message: str | None = None) -> None:
        super().__init__(
            f"Recovery error for workflow ID {workflow_id}: {message}", DBOSErrorCode.RecoveryError.value, 500
        )


class DBOSWorkflowFunctionNotFoundError(DBOSException):
    def __init__(self, workflow_id: str, message: str | None = None) -> None:
        super().__init__(
            f"Workflow function not found for workflow ID {workflow_id}: {message}",
            DBOSErrorCode.WorkflowFunctionNotFound.value,
            500,
        )


class DBOSNonExistentWorkflowError(DBOSException):
    def __init__(self, destination: str, destination_id: str | None = None) -> None:
        # DBOS passes (kind, id); a single argument is taken as the workflow ID.
        if destination_id is None:
            destination, destination_id = "workflow", destination
        super().__init__(
            f"{destination} {destination_id} does not exist", DBOSErrorCode.NonExistentWorkflowError.value, 404
        )


class MaxRecoveryAttemptsExceededError(DBOSException):
    def __init__(self, workflow_id: str, max_retries: int | None = None) -> None:
        super().__init__(
            f"Workflow {workflow_id} has been moved to MAX_RECOVERY_ATTEMPTS_EXCEEDED after "
            f"{max_retries} recovery attempts",
            DBOSErrorCode.MaxRecoveryAttemptsExceeded.value,
            500,
        )


class DBOSMaxStepRetriesExceeded(DBOSException):
    def __init__(self, step_name: str, max_retries: int, errors: list[Exception] | None = None) -> None:
        self.step_name = step_name
        self.max_retries = max_retries
        self.errors = list(errors or [])
        last = f"; last error: {self.errors[-1]!r}" if self.errors else ""
        super().__init__(
            f"Step {step_name} has exceeded its maximum of {max_retries} retries{last}",
            DBOSErrorCode.MaxStepRetriesExceeded.value,
            500,
        )


class DBOSUnexpectedStepError(DBOSException):
    def __init__(self, workflow_id: str, step_id: int, expected_name: str, recorded_name: str) -> None:
        super().__init__(
            f"During execution of workflow {workflow_id} step {step_id}, function {recorded_name} was recorded "
            f"when {expected_name} was expected. Check that your workflow is deterministic.",
            DBOSErrorCode.UnexpectedStep.value,
            500,
        )


class DBOSAwaitedWorkflowCancelledError(DBOSException):
    def __init__(self, workflow_id: str) -> None:
        super().__init__(
            f"Awaited workflow {workflow_id} was cancelled", DBOSErrorCode.AwaitedWorkflowCancelled.value, 409
        )


class DBOSNotAuthorizedError(DBOSException):
    """Role-based security: the authenticated user holds none of the roles a function requires (HTTP 403)."""

    def __init__(self, msg: str) -> None:
        self.msg = msg
        super().__init__(msg, DBOSErrorCode.NotAuthorized.value, 403)


class DBOSStreamTimeoutError(DBOSException):
    """No value arrived on a stream within the reader's timeout, or the stream ended before the offset."""

    def __init__(self, workflow_id: str, key: str, timeout_seconds: float | None = None) -> None:
        self.workflow_id = workflow_id
        self.key = key
        self.timeout_seconds = timeout_seconds
        within = f" within {timeout_seconds} seconds" if timeout_seconds is not None else ""
        super().__init__(f"No value arrived on stream {key} of workflow {workflow_id}{within}",
                         DBOSErrorCode.StreamTimeout.value)


class DBOSStreamNondeterminismError(DBOSException):
    """Two stream reads of one workflow overlapped, so which read records which value would depend on timing."""

    def __init__(self, workflow_id: str, key: str) -> None:
        self.workflow_id = workflow_id
        self.key = key
        super().__init__(
            f"Cannot deterministically read stream {key} in workflow {workflow_id}: another stream read in the "
            "same workflow is still in progress. Read streams from sequential workflow code, or from a step.",
            DBOSErrorCode.StreamNondeterminism.value,
        )


class DBOSSerializationError(DBOSException):
    """A value cannot be stored as a checkpoint: its type is not serialisable, or it is too big.

    A bug in the code that produced the value, not in the client's request: HTTP 500 (the message,
    which names the step, goes to the log, not to the client)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, DBOSErrorCode.SerializationError.value, 500)


class DBOSFencedError(DBOSException):
    """Another executor adopted the workflow; this process's late checkpoint write was refused."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(
            f"Workflow {workflow_id} is now owned by another executor; this execution stopped. Retry the "
            "request (with the same idempotency key) to get the other execution's result",
            DBOSErrorCode.Fenced.value,
            409,
        )


class DBOSDatabaseUnavailableError(DBOSException):
    """The database did not answer within the retry deadline. Not a workflow's outcome: the workflow
    stays PENDING and its executor runs it again once the database is back."""

    def __init__(self, message: str) -> None:
        super().__init__(message, DBOSErrorCode.DatabaseUnavailable.value, 503)


class DBOSWorkflowCancelledError(DBOSBaseException):
    def __init__(self, msg: str) -> None:
        super().__init__(msg, DBOSErrorCode.WorkflowCancelled.value)


class DBOSShutdownError(DBOSBaseException):
    """A workflow waiting in sleep/recv/get_event was interrupted because this process is stopping.

    Not the workflow's outcome: it stays PENDING, and another executor resumes it from its checkpoints
    (a durable sleep keeps its original wake-up time).
    """

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"Workflow {workflow_id} was interrupted: this process is shutting down; another "
                         "executor resumes it", DBOSErrorCode.NotLaunched.value)


class DBOSWorkflowConflictIDError(DBOSBaseException):
    def __init__(self, workflow_id: str) -> None:
        super().__init__(
            f"Conflicting workflow ID {workflow_id}", DBOSErrorCode.ConflictingIDError.value
        )
