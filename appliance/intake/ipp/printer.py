"""The printer's operations (RFC 8011, PWG 5100.14), its sign-in and its job table.

Sign-in is HTTP Basic over IPPS, checked against the site's users (names matched without
regard to case) like every password: rate-limited per account and per address, through
the KDF gate (`jobs.release.authenticate`). A job-creating operation without credentials
is answered HTTP 401 (iOS, macOS and Mopria then ask for them); over plain `ipp://` it is
answered 426 Upgrade Required (what CUPS answers), so no password crosses in the clear.
The job belongs to the signed-in user whatever `requesting-user-name` says. Everything
else a client can get wrong is an IPP status, and a request that is not IPP at all is
`client-error-bad-request`; nothing is held for any of them.

The job table (IPP job ids → held meshprint jobs) is this node's memory: the jobs
themselves live on the mesh and are released from the release page. Get-Jobs and
Get-Job-Attributes answer anyone (a phone follows its job), with a job's name and sender
(PRIVATE) only for its owner, signed in or through their personal URL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import logging
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.crypto.userkeys import KdfBusy, WrongPassword
from appliance.errors import BadRequest, MeshprintError, TooLarge, TooManyRequests
from appliance.https.server import Request, Response
from appliance.intake.ipp import attributes
from appliance.intake.ipp.wire import Document, Malformed, read_request
from appliance.jobs.intake import ingest
from appliance.jobs.release import authenticate
from appliance.mesh.context import MeshContext
from appliance.printers.ipp import (
    Attribute,
    DelimiterTag,
    IppMessage,
    Operation,
    OutOfBand,
    Status,
    ValueTag,
)
from appliance.printers.ipp.message import AttributeGroup
from appliance.printers.ipp.serializer import attr, encode
from appliance.printoptions import (
    COPIES_MAX,
    MEDIA,
    MEDIA_NAMES,
    SIDES,
    clean_options,
    media_of_size,
)
from appliance.ratelimit import Limiter, MemoryAttempts
from appliance.site import printer_urls
from appliance.site.directory import Directory

log = logging.getLogger(__name__)
PATH = "/ipp/print"
SIGN_IN_LIMIT, SIGN_IN_WINDOW = 5, 5 * 60  # as the release API's sign-ins
JOBS_KEPT = 500
CREATING = {Operation.PRINT_JOB, Operation.VALIDATE_JOB, Operation.CREATE_JOB}
# operations on a job: only its owner, signed in
ON_A_JOB = {
    Operation.SEND_DOCUMENT,
    Operation.CLOSE_JOB,
    Operation.CANCEL_JOB,
    Operation.CANCEL_MY_JOBS,
}
# operations that show jobs: anyone may ask; only a job's owner sees who sent it and
# its name (PRIVATE), as CUPS's JobPrivateValues default
LOOKING = {Operation.GET_JOB_ATTRIBUTES, Operation.GET_JOBS}
PRIVATE = ("job-name", "job-originating-user-name")
OPERATION_GROUP = DelimiterTag.OPERATION_ATTRIBUTES
JOB_GROUP = DelimiterTag.JOB_ATTRIBUTES

# job-state
PENDING, CANCELED, ABORTED, COMPLETED = 3, 7, 8, 9


class IppRefusal(Exception):
    """An IPP status answer (HTTP 200 with a status code other than success)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HttpRefusal(Exception):
    """An answer at the HTTP level: 401 (sign in) or 426 (use TLS)."""

    def __init__(self, status: int, message: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers


@dataclass
class IppJob:
    id: int
    owner: str
    name: str
    created: float
    options: dict[str, Any]
    uuid: str = field(default_factory=lambda: f"urn:uuid:{uuid.uuid4()}")
    state: int = PENDING
    reasons: str = "job-incoming"
    held_as: str = ""  # the meshprint job id, once the document is sealed
    format: str = attributes.FORMAT_DEFAULT
    size: int = 0
    processing: float | None = None  # when its document began to arrive
    completed: float | None = None


@dataclass
class PrinterConfig:
    """What the printer needs of the node: where it is and how to name itself."""

    port: int
    address: str  # the host name or address in the printer's URIs (when Host is absent)
    release_url: str  # the release page (printer-more-info)
    name: str = "Secure Print"
    location: str = ""


class Printer:
    """One node's printer: `app(request)` answers POST /ipp/print."""

    def __init__(self, node: MeshContext, config: PrinterConfig) -> None:
        self.node = node
        self.config = config
        self.uuid = attributes.printer_uuid(node.directory().site_id, node.id)
        self.limiter = Limiter(MemoryAttempts(), SIGN_IN_LIMIT, SIGN_IN_WINDOW)
        self._jobs: OrderedDict[int, IppJob] = OrderedDict()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.signed_in = SignInCache()

    # HTTP

    def app(self, request: Request) -> Response:
        if _route(request.path) is None:
            return Response(404, b"no such printer: the printer is at /ipp/print\n", "text/plain")
        if request.method != "POST":
            return Response(
                405, b"IPP requests are POSTed\n", "text/plain", headers={"Allow": "POST"}
            )
        if request.headers.get("Content-Type", "").split(";")[0].strip() != "application/ipp":
            return Response(
                400, b"not an IPP request (Content-Type application/ipp)\n", "text/plain"
            )
        try:
            message, first = read_request(request.body)
        except Malformed as err:
            status = Status.CLIENT_ERROR_BAD_REQUEST
            if not err.version:
                status = Status.SERVER_ERROR_VERSION_NOT_SUPPORTED
            return self._ipp(IppMessage(status), request, str(err), None, err.request_id)
        except TooLarge as err:
            answer = IppMessage(Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE)
            return self._ipp(answer, request, str(err), None)
        left = request.body.remaining  # None: chunked
        sent = None if left is None else len(first) + left
        try:
            answer = self.operate(
                request, message, Document(request.body, first, self._compression(message), sent)
            )
        except HttpRefusal as refusal:
            body = f"{refusal}\n".encode()
            return Response(refusal.status, body, "text/plain", headers=refusal.headers)
        except IppRefusal as refusal:
            return self._ipp(IppMessage(refusal.status), request, str(refusal), message)
        return self._ipp(answer, request, "", message)

    def _ipp(
        self,
        answer: IppMessage,
        request: Request,
        text: str,
        asked: IppMessage | None,
        request_id: int = 0,
    ) -> Response:
        """The answer in the request's version, with its request-id (RFC 8011 4.1.1)."""
        request_id = asked.request_id if asked is not None else request_id
        answer.request_id = 1
        if asked is not None and asked.version[0] in (1, 2):
            answer.version = asked.version
        else:
            answer.version = (2, 0)
        group = answer.group(OPERATION_GROUP)
        head = {
            "attributes-charset": attr("attributes-charset", "utf-8"),
            "attributes-natural-language": attr("attributes-natural-language", "en"),
        }
        if text:
            head["status-message"] = attr("status-message", text[:255])
        group.attributes = {**head, **group.attributes}
        answer.groups.sort(key=lambda g: g.tag != OPERATION_GROUP)
        data = bytearray(encode(answer))
        data[4:8] = (request_id & 0xFFFFFFFF).to_bytes(4, "big")
        return Response(200, bytes(data), "application/ipp")

    @staticmethod
    def _compression(message: IppMessage) -> str:
        return str(message.first("compression", OPERATION_GROUP) or "")

    # Dispatch

    def operate(self, request: Request, message: IppMessage, document: Document) -> IppMessage:
        self._check_request(message)
        operation = message.code
        if operation not in attributes.OPERATIONS:
            raise IppRefusal(
                Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED,
                f"operation 0x{operation:04x} is not supported",
            )
        user = ""
        if operation in CREATING or operation in ON_A_JOB:
            user = self._sign_in(request, message)
        elif operation in LOOKING:
            user = self._viewer(request, message)
        handlers: dict[int, Callable[[Request, IppMessage, Document, str], IppMessage]] = {
            Operation.GET_PRINTER_ATTRIBUTES: self._get_printer_attributes,
            Operation.VALIDATE_JOB: self._validate_job,
            Operation.PRINT_JOB: self._print_job,
            Operation.CREATE_JOB: self._create_job,
            Operation.SEND_DOCUMENT: self._send_document,
            Operation.CLOSE_JOB: self._close_job,
            Operation.CANCEL_JOB: self._cancel_job,
            Operation.GET_JOB_ATTRIBUTES: self._get_job_attributes,
            Operation.GET_JOBS: self._get_jobs,
            Operation.IDENTIFY_PRINTER: self._identify,
            Operation.CANCEL_MY_JOBS: self._cancel_my_jobs,
        }
        return handlers[operation](request, message, document, user)

    def _check_request(self, message: IppMessage) -> None:
        if message.version[0] not in (1, 2):
            raise IppRefusal(Status.SERVER_ERROR_VERSION_NOT_SUPPORTED, "IPP 1.1 or 2.0")
        if message.request_id < 1:
            raise IppRefusal(Status.CLIENT_ERROR_BAD_REQUEST, "request-id must be 1 or more")
        if not message.groups or message.groups[0].tag != OPERATION_GROUP:
            raise IppRefusal(Status.CLIENT_ERROR_BAD_REQUEST, "no operation attributes")
        names = list(message.groups[0].attributes)
        if names[:2] != ["attributes-charset", "attributes-natural-language"]:
            raise IppRefusal(
                Status.CLIENT_ERROR_BAD_REQUEST,
                "attributes-charset and attributes-natural-language must come first",
            )
        charset = message.first("attributes-charset", OPERATION_GROUP)
        if not isinstance(charset, str) or charset.lower() not in ("utf-8", "us-ascii"):
            raise IppRefusal(Status.CLIENT_ERROR_CHARSET_NOT_SUPPORTED, "only utf-8")
        if (
            message.find("printer-uri", OPERATION_GROUP) is None
            and message.find("job-uri", OPERATION_GROUP) is None
        ):
            raise IppRefusal(Status.CLIENT_ERROR_BAD_REQUEST, "no printer-uri")

    # Sign-in

    def _sign_in(self, request: Request, message: IppMessage) -> str:
        if not request.secure:
            raise HttpRefusal(
                426,
                "Secure Print takes jobs over TLS only: use ipps:// (your password or "
                "personal printer URL never crosses the network in the clear)",
                {"Upgrade": "TLS/1.2,TLS/1.3,HTTP/1.1", "Connection": "Upgrade"},
            )
        secret = _personal(request.path)
        if secret is not None:
            return self._personal_owner(request, message, secret)
        credentials = _basic(request.headers.get("Authorization", ""))
        if credentials is None:
            raise HttpRefusal(
                401,
                "sign in with your Secure Print user name and password",
                {"WWW-Authenticate": 'Basic realm="Secure Print"'},
            )
        name, password = credentials[0].strip().lower(), credentials[1]
        if self.signed_in.check(self.node.directory(), name, password):
            return name  # Send-Document after Create-Job: no second KDF run
        try:
            with self.limiter.attempt("password", request.client[0], name, failure=WrongPassword):
                authenticate(self.node, name, password)
        except WrongPassword:
            raise HttpRefusal(
                401,
                "wrong user name or password",
                {"WWW-Authenticate": 'Basic realm="Secure Print"'},
            ) from None
        except TooManyRequests as err:
            raise IppRefusal(Status.CLIENT_ERROR_NOT_AUTHORIZED, str(err)) from None
        except KdfBusy as err:
            raise IppRefusal(Status.SERVER_ERROR_BUSY, str(err)) from None
        self.signed_in.remember(self.node.directory(), name, password)
        return name

    def _viewer(self, request: Request, message: IppMessage) -> str:
        """Who asks to see jobs: the owner of the personal URL asked through, or the user
        signed in with Basic over TLS (wrong credentials get 401, as for a job); "" when
        anonymous (then `my-jobs` asks for a sign-in: there are no jobs of nobody's)."""
        secret = _personal(request.path)
        if secret is not None and request.secure:
            owner = printer_urls.owner_of(self.node.directory(), secret)
            if owner is not None:
                return owner
        asks_for_mine = message.first("my-jobs", OPERATION_GROUP) is True
        if asks_for_mine or (request.secure and request.headers.get("Authorization")):
            return self._sign_in(request, message)
        return ""

    def _personal_owner(self, request: Request, message: IppMessage, secret: str) -> str:
        """The user whose personal printer URL this is; not-authorized for a replaced,
        revoked or made-up one (the same answer for each: no hint which)."""
        directory = self.node.directory()
        owner = printer_urls.owner_of(directory, secret)
        if owner is None:
            log.info("IPP printer: a job for an unknown personal URL from %s", request.client[0])
            raise IppRefusal(
                Status.CLIENT_ERROR_NOT_AUTHORIZED,
                "this personal printer URL no longer takes jobs (it was replaced or revoked): "
                "add Secure Print again with the URL on your Secure Print page",
            )
        said = message.first("requesting-user-name", OPERATION_GROUP)
        if isinstance(said, str) and said.strip():
            named = directory.find_user(said)
            if named is None or named.name != owner:
                # Held for the URL's owner all the same; the log shows a URL used by
                # someone else (a leaked or shared URL).
                log.warning(
                    "IPP printer: a job through %s's personal URL names %r (not one of "
                    "%s's names or aliases); held for %s",
                    owner,
                    said[:64],
                    owner,
                    owner,
                )
        return owner

    # Operations

    def _get_printer_attributes(
        self, request: Request, message: IppMessage, document: Document, user: str
    ) -> IppMessage:
        requested = [str(v) for v in message.values("requested-attributes", OPERATION_GROUP)]
        answer = IppMessage(Status.SUCCESSFUL_OK)
        group = answer.group(DelimiterTag.PRINTER_ATTRIBUTES)
        for attribute in attributes.select(
            attributes.printer_attributes(self._identity(request), self._queued()), requested
        ):
            group.add(attribute)
        return answer

    def _validate_job(
        self, request: Request, message: IppMessage, document: Document, user: str
    ) -> IppMessage:
        self._check_format(message)
        self._options(message)
        return IppMessage(Status.SUCCESSFUL_OK)

    def _print_job(
        self, request: Request, message: IppMessage, document: Document, user: str
    ) -> IppMessage:
        job = self._new_job(message, user)
        self._hold(job, message, document)
        return self._job_answer(request, job)

    def _create_job(
        self, request: Request, message: IppMessage, document: Document, user: str
    ) -> IppMessage:
        job = self._new_job(message, user)
        return self._job_answer(request, job)

    def _send_document(
        self, request: Request, message: IppMessage, document: Document, user: str
    ) -> IppMessage:
        job = self._job_of(message, user)
        if job.state != PENDING or job.held_as:
            raise IppRefusal(
                Status.CLIENT_ERROR_NOT_POSSIBLE,
                "this job has its document already (one document per job)",
            )
        last = message.first("last-document", OPERATION_GROUP)
        if not isinstance(last, bool):
            raise IppRefusal(Status.CLIENT_ERROR_BAD_REQUEST, "last-document is required")
        if last is False:
            raise IppRefusal(
                Status.SERVER_ERROR_MULTIPLE_DOCUMENT_JOBS_NOT_SUPPORTED,
                "one document per job: send it with last-document true",
            )
        self._hold(job, message, document)
        return self._job_answer(request, job)

    def _close_job(
        self, request: Request, message: IppMessage, document: Document, user: str
    ) -> IppMessage:
        job = self._job_of(message, user)
        if job.state == PENDING and not job.held_as:
            self._finish(job, ABORTED, "aborted-by-system")
        return self._job_answer(request, job)

    def _cancel_job(
        self, request: Request, message: IppMessage, document: Document, user: str
    ) -> IppMessage:
        job = self._job_of(message, user)
        if job.state in (CANCELED, ABORTED, COMPLETED):
            raise IppRefusal(Status.CLIENT_ERROR_NOT_POSSIBLE, "the job is finished already")
        self._cancel(job, "Cancel-Job")
        return IppMessage(Status.SUCCESSFUL_OK)

    def _cancel_my_jobs(
        self, request: Request, message: IppMessage, document: Document, user: str
    ) -> IppMessage:
        with self._lock:
            mine = [j for j in self._jobs.values() if j.owner == user and j.state < CANCELED]
        for job in mine:
            self._cancel(job, "Cancel-My-Jobs")
        return IppMessage(Status.SUCCESSFUL_OK)

    def _cancel(self, job: IppJob, operation: str) -> None:
        """The owner cancels `job`: its held copy (if it got that far) goes too."""
        if job.held_as:
            self.node.store.delete(job.held_as, f"cancelled by its owner (IPP {operation})")
        self._finish(job, CANCELED, "job-canceled-by-user")

    def _get_job_attributes(
        self, request: Request, message: IppMessage, document: Document, user: str
    ) -> IppMessage:
        job = self._job_of(message, None)
        answer = IppMessage(Status.SUCCESSFUL_OK)
        self._describe(request, job, answer.group(JOB_GROUP), private=job.owner == user)
        return answer

    def _get_jobs(
        self, request: Request, message: IppMessage, document: Document, user: str
    ) -> IppMessage:
        which = message.first("which-jobs", OPERATION_GROUP) or "not-completed"
        limit = message.first("limit", OPERATION_GROUP)
        if which not in ("completed", "not-completed", "all"):
            raise IppRefusal(Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED, "which-jobs")
        requested = [str(v) for v in message.values("requested-attributes", OPERATION_GROUP)]
        with self._lock:
            jobs = list(reversed(self._jobs.values()))
        answer = IppMessage(Status.SUCCESSFUL_OK)
        count = 0
        mine = message.first("my-jobs", OPERATION_GROUP) is True
        for job in jobs:
            if mine and job.owner != user:
                continue
            done = job.state >= CANCELED
            if (which == "completed" and not done) or (which == "not-completed" and done):
                continue
            if isinstance(limit, int) and count >= limit > 0:
                break
            group = AttributeGroup(JOB_GROUP)  # one group per job
            answer.groups.append(group)
            self._describe(request, job, group, brief=not requested, private=job.owner == user)
            if not requested:  # RFC 8011 4.2.6: job-id and job-uri unless asked for more
                group.attributes = {k: group.attributes[k] for k in ("job-id", "job-uri")}
            elif "all" not in requested and "job-description" not in requested:
                group.attributes = {k: v for k, v in group.attributes.items() if k in requested}
            count += 1
        return answer

    def _identify(
        self, request: Request, message: IppMessage, document: Document, user: str
    ) -> IppMessage:
        log.info(
            "IPP printer: Identify-Printer from %s (a virtual printer: logged)", request.client[0]
        )
        return IppMessage(Status.SUCCESSFUL_OK)

    # Jobs

    def _check_format(self, message: IppMessage) -> str:
        fmt = message.first("document-format", OPERATION_GROUP) or attributes.FORMAT_DEFAULT
        if fmt not in (*attributes.FORMATS, attributes.FORMAT_DEFAULT):
            raise IppRefusal(
                Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
                f"{str(fmt)[:60]} is not supported: send PDF, Apple or PWG raster, or JPEG",
            )
        compression = message.first("compression", OPERATION_GROUP)
        if compression not in (None, "none", *attributes.COMPRESSIONS):
            raise IppRefusal(
                Status.CLIENT_ERROR_COMPRESSION_NOT_SUPPORTED, "compression: none, gzip or deflate"
            )
        return str(fmt)

    @staticmethod
    def _options(message: IppMessage) -> dict[str, Any]:
        """The job's defaults for release: copies, sides, colour and paper size (the rest
        is ignored, as `ipp-attribute-fidelity` false allows)."""
        raw: dict[str, Any] = {}
        copies = message.first("copies", JOB_GROUP)
        if copies is not None:
            if not isinstance(copies, int) or not 1 <= copies <= COPIES_MAX:
                raise IppRefusal(
                    Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                    f"copies: 1 to {COPIES_MAX}",
                )
            raw["copies"] = copies
        sides = message.first("sides", JOB_GROUP)
        if sides is not None:
            if sides not in SIDES:
                raise IppRefusal(Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED, "sides")
            raw["sides"] = sides
        mode = message.first("print-color-mode", JOB_GROUP)
        if mode in ("monochrome", "process-monochrome", "bi-level"):
            raw["color"] = False
        elif mode == "color":
            raw["color"] = True
        media = _media(message)
        if media is not None:
            raw["media"] = media
        return clean_options(raw)

    def _new_job(self, message: IppMessage, user: str) -> IppJob:
        fmt = self._check_format(message)
        options = self._options(message)
        name = message.first("job-name", OPERATION_GROUP) or message.first(
            "document-name", OPERATION_GROUP
        )
        with self._lock:
            job = IppJob(next(self._ids), user, str(name or "Untitled"), time.time(), options)
            job.format = fmt
            self._jobs[job.id] = job
            while len(self._jobs) > JOBS_KEPT:
                self._jobs.popitem(last=False)
        return job

    def _hold(self, job: IppJob, message: IppMessage, document: Document) -> None:
        """Seal the document onto the mesh as the signed-in user's job."""
        fmt = message.first("document-format", OPERATION_GROUP)
        if fmt is not None:
            job.format = self._check_format(message)
        name = message.first("document-name", OPERATION_GROUP)
        title = job.name if job.name != "Untitled" or not name else str(name)
        content_type = "" if job.format == attributes.FORMAT_DEFAULT else job.format
        job.state, job.reasons, job.processing = PENDING, "job-incoming", time.time()
        try:
            receipt = ingest(self.node, job.owner, title, content_type, document, job.options)
        except TooLarge as err:
            self._finish(job, ABORTED, "aborted-by-system")
            raise IppRefusal(Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE, str(err)) from None
        except BadRequest as err:
            self._finish(job, ABORTED, "aborted-by-system")
            raise IppRefusal(Status.CLIENT_ERROR_BAD_REQUEST, str(err)) from None
        except MeshprintError as err:
            self._finish(job, ABORTED, "aborted-by-system")
            raise IppRefusal(Status.SERVER_ERROR_INTERNAL_ERROR, str(err)) from None
        job.held_as, job.size = receipt.job.id, receipt.job.size
        job.format = receipt.job.format
        # Done, as far as this printer goes: the job is sealed on the mesh and waits for
        # its owner's release at a printer (as pull-printing systems report it, so a
        # phone's print queue and ipptool's "until job complete" end here).
        self._finish(job, COMPLETED, "job-completed-successfully")
        log.info(
            "IPP printer: job %d of %s held as %s (%d bytes, %s)",
            job.id,
            job.owner,
            job.held_as,
            job.size,
            job.format,
        )

    def _finish(self, job: IppJob, state: int, reason: str) -> None:
        job.state, job.reasons, job.completed = state, reason, time.time()

    def _job_of(self, message: IppMessage, user: str | None) -> IppJob:
        job_id = message.first("job-id", OPERATION_GROUP)
        if job_id is None:
            uri = message.first("job-uri", OPERATION_GROUP)
            if isinstance(uri, str) and uri.rsplit("/", 1)[-1].isdigit():
                job_id = int(uri.rsplit("/", 1)[-1])
        if not isinstance(job_id, int) or isinstance(job_id, bool):
            raise IppRefusal(Status.CLIENT_ERROR_BAD_REQUEST, "job-id is missing")
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise IppRefusal(Status.CLIENT_ERROR_NOT_FOUND, f"no job {job_id}")
        if user is not None and job.owner != user:
            raise IppRefusal(Status.CLIENT_ERROR_NOT_AUTHORIZED, "this is another user's job")
        return job

    def _queued(self) -> int:
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.state < CANCELED)

    # Answers

    def _identity(self, request: Request) -> attributes.Identity:
        host = request.headers.get("Host", "") or f"{self.config.address}:{self.config.port}"
        if not all(c.isalnum() or c in ".-:[]" for c in host) or len(host) > 255:
            host = f"{self.config.address}:{self.config.port}"
        personal = _personal(request.path)
        path = PATH if personal is None else f"{PATH}/{personal}"
        return attributes.Identity(
            uris=(f"ipps://{host}{path}", f"ipp://{host}{path}"),
            authentication="basic" if personal is None else "none",
            uuid=self.uuid,
            name=self.config.name,
            location=self.config.location,
            more_info=self.config.release_url,
            icon=f"{self.config.release_url.rstrip('/')}/static/icon-128.png",
        )

    def _job_answer(self, request: Request, job: IppJob) -> IppMessage:
        answer = IppMessage(Status.SUCCESSFUL_OK)
        self._describe(request, job, answer.group(JOB_GROUP), brief=True)
        return answer

    def _describe(
        self,
        request: Request,
        job: IppJob,
        group: AttributeGroup,
        brief: bool = False,
        private: bool = False,
    ) -> None:
        """The job's attributes; its PRIVATE ones only when `private` (its owner asks)."""
        uri = f"{self._identity(request).uris[0]}/{job.id}"
        items: list[Attribute] = [
            attr("job-id", job.id),
            attr("job-uri", uri),
            attr("job-state", job.state, ValueTag.ENUM),
            attr("job-state-reasons", job.reasons, ValueTag.KEYWORD),
        ]
        if not brief:
            printer_uri = self._identity(request).uris[0]
            items += [
                attr("job-uuid", job.uuid, ValueTag.URI),
                attr("job-name", job.name[:255]),
                attr("job-originating-user-name", job.owner, ValueTag.NAME_WITHOUT_LANGUAGE),
                attr("job-printer-uri", printer_uri, ValueTag.URI),
                attr("job-printer-up-time", int(time.time() - attributes.BOOT) + 1),
                attr("time-at-creation", int(job.created - attributes.BOOT) + 1),
                attr("document-format", job.format, ValueTag.MIME_MEDIA_TYPE),
                attr("job-k-octets", (job.size + 1023) // 1024),
                attr("copies", int(job.options.get("copies", 1))),
                attr("sides", str(job.options.get("sides", "one-sided")), ValueTag.KEYWORD),
                attr(
                    "media",
                    str(job.options.get("media", attributes.MEDIA_DEFAULT)),
                    ValueTag.KEYWORD,
                ),
                attr("job-state-message", self._state_message(job), ValueTag.TEXT_WITHOUT_LANGUAGE),
            ]
            items += [
                attr("time-at-processing", _uptime(job.processing)),
                attr("time-at-completed", _uptime(job.completed)),
            ]
        for item in items:
            if private or item.name not in PRIVATE:
                group.add(item)

    @staticmethod
    def _state_message(job: IppJob) -> str:
        if job.held_as:
            return "Held securely: release it at a printer from the Secure Print page"
        return {PENDING: "Waiting for the document", CANCELED: "Cancelled"}.get(
            job.state, "Not held"
        )


def _route(path: str) -> tuple[str | None, int | None] | None:
    """The personal URL's secret and the job id a path names, None for a path that is
    not the printer's: `/ipp/print`, `/ipp/print/SECRET` (a personal printer URL) and
    either followed by `/JOB-ID` (a job's URI, which clients may post to)."""
    if path == PATH:
        return None, None
    head, sep, rest = path.partition(f"{PATH}/")
    parts = rest.split("/")
    if head or not sep or len(parts) > 2 or not all(parts) or len(rest) > 160:
        return None
    job = parts.pop() if parts[-1].isdigit() and len(parts[-1]) <= 10 else None
    if len(parts) > 1 or (parts and parts[0].isdigit()):
        return None
    return (parts[0] if parts else None), (int(job) if job is not None else None)


def _personal(path: str) -> str | None:
    """The secret of a personal printer URL's path (`/ipp/print/SECRET[/JOB-ID]`), or None."""
    route = _route(path)
    return route[0] if route is not None else None


class SignInCache:
    """Sign-ins that passed, for a short while, in this process's memory only: so the
    Send-Document after a Create-Job (and the Create-Job after a Validate-Job) does not run
    the KDF again. Keyed by an HMAC of name and password under a key made at start (no
    password is kept); an entry counts only while the user's key is the one it was made
    for (a new password ends it) and for `ttl` seconds; at most `size` entries."""

    def __init__(
        self, ttl: float = 120.0, size: int = 256, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl, self.size, self.clock = ttl, size, clock
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _tag(self, name: str, password: str) -> bytes:
        message = name.encode() + b"\0" + password.encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def remember(self, directory: Directory, name: str, password: str) -> None:
        user = directory.user(name)
        if user is None:
            return
        with self._lock:
            tag = self._tag(name, password)
            self._entries[tag] = (user.public_key, self.clock() + self.ttl)
            self._entries.move_to_end(tag)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def check(self, directory: Directory, name: str, password: str) -> bool:
        user = directory.user(name)
        if user is None:
            return False
        tag = self._tag(name, password)
        with self._lock:
            entry = self._entries.get(tag)
            if entry is None:
                return False
            if entry[1] < self.clock() or entry[0] != user.public_key:
                del self._entries[tag]
                return False
        return True


def _media(message: IppMessage) -> str | None:
    """The paper size a job asks for: `media`, or the `media-size` of `media-col` (what
    AirPrint and Mopria send); None when it asks for none. A size the printer does not
    offer is ignored (the printer's own paper), as `ipp-attribute-fidelity` false allows;
    with fidelity true the job is refused at submission."""
    media = message.first("media", JOB_GROUP)
    if media is None:
        size = _member(message.first("media-col", JOB_GROUP), "media-size")
        if size is None:
            return None
        media = media_of_size(_member(size, "x-dimension"), _member(size, "y-dimension"))
    if media in MEDIA:
        return str(media)
    if message.first("ipp-attribute-fidelity", OPERATION_GROUP) is True:
        raise IppRefusal(
            Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
            f"paper size: {', '.join(MEDIA_NAMES.values())} ({', '.join(MEDIA)})",
        )
    return None


def _member(collection: object, name: str) -> object:
    """The first value of a collection's member, or None."""
    member = collection.get(name) if isinstance(collection, dict) else None
    return member.values[0] if member is not None and member.values else None


def _uptime(at: float | None) -> int | OutOfBand:
    """A time as printer up-time seconds (RFC 8011 5.3.14), no-value while it has not come."""
    return OutOfBand.NO_VALUE if at is None else int(at - attributes.BOOT) + 1


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    return (name, password) if sep and name else None
