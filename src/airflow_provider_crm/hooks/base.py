"""What every vendor hook shares: reading the connection, building the transport, testing it."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from airflow_provider_crm._compat import BaseHook, mask_secret
from airflow_provider_crm.errors import (
    CrmApiError,
    CrmAuthenticationError,
    CrmConfigurationError,
    CrmConnectionError,
    CrmError,
    CrmNotFoundError,
    CrmPermissionError,
)
from airflow_provider_crm.hooks.forms import legacy_field_behaviour, legacy_widgets
from airflow_provider_crm.hooks.tokens import IssuedToken
from airflow_provider_crm.transport import HttpTransport, RetrySettings, Timeouts, VendorRules, require_json
from airflow_provider_crm.transport.limiter import RateLimiter, shared_limiter
from airflow_provider_crm.transport.urls import normalise_base_url

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
DEFAULT_RATE_LIMIT_SHARE = 0.9
"""Share of the limit a vendor advertises that a connection without an explicit rate uses: the
rest stays free for the org's other integrations, which draw from the same budget."""


class CrmHook(BaseHook):
    """Base class of the vendor hooks.

    Subclasses set the discovery attributes (``conn_type``, ``conn_name_attr``,
    ``default_conn_name``, ``hook_name``), a :class:`VendorRules` and :meth:`base_url`. The
    legacy form methods Airflow 3.0/3.1 look for on each hook class are attached automatically
    from :mod:`airflow_provider_crm.connection_forms`.
    """

    conn_type: ClassVar[str]
    conn_name_attr: ClassVar[str]
    default_conn_name: ClassVar[str]
    hook_name: ClassVar[str]
    vendor_rules: ClassVar[VendorRules] = VendorRules()
    default_rate_limit: ClassVar[float | None] = None
    """Requests per second the vendor documents for one account; ``None`` when it documents none."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "conn_type" in cls.__dict__:
            conn_type = cls.conn_type
            # Discovery only looks at methods defined on the class itself.
            cls.get_connection_form_widgets = classmethod(lambda _cls: legacy_widgets(conn_type))  # type: ignore[assignment,method-assign]
            cls.get_ui_field_behaviour = classmethod(lambda _cls: legacy_field_behaviour(conn_type))  # type: ignore[assignment,method-assign]

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.default_conn_name

    @property
    def vendor(self) -> str:
        return self.vendor_rules.vendor

    @cached_property
    def connection(self) -> Any:
        return self.get_connection(self.conn_id)

    # -- reading the connection -------------------------------------------------------------

    def extra(self, name: str, default: Any = None) -> Any:
        """An extra by its bare key, falling back to the legacy ``extra__<type>__<name>`` key.

        :param name: The extra's bare key, e.g. ``verify_ssl``.
        :param default: Returned when neither key holds a value (``None`` and ``""`` count as unset).
        :return: The stored value, not converted.
        """
        extras = self.connection.extra_dejson or {}
        for key in (name, f"extra__{self.conn_type}__{name}"):
            value = extras.get(key)
            if value is not None and value != "":
                return value
        return default

    def float_extra(self, name: str, default: float) -> float:
        """A positive number from an extra (read as by :meth:`extra`).

        :param name: The extra's bare key, e.g. ``read_timeout``.
        :param default: Used when the extra is unset.
        :raises CrmConfigurationError: When the value is not a number, or not positive.
        """
        value = self.extra(name, default)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise CrmConfigurationError(
                f"{self.vendor}: connection {self.conn_id!r} extra {name!r} must be a number, got {value!r}"
            ) from None
        if number <= 0:
            raise CrmConfigurationError(f"{self.vendor}: connection {self.conn_id!r} extra {name!r} must be positive")
        return number

    def bool_extra(self, name: str, default: bool) -> bool:
        """A flag from an extra: a bool, or ``true``/``1``/``yes``/``on``/``false``/``0``/``no``/``off`` (any case).

        :param name: The extra's bare key, e.g. ``verify_ssl``.
        :param default: Used when the extra is unset.
        :raises CrmConfigurationError: When the value is none of those.
        """
        value = self.extra(name, default)
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise CrmConfigurationError(
            f"{self.vendor}: connection {self.conn_id!r} extra {name!r} must be true or false, got {value!r}"
        )

    def secret(self, value: str | None, what: str) -> str:
        """A credential from the connection, checked for presence and registered with the masker.

        :param value: The raw credential (a connection field or extra); surrounding whitespace is stripped.
        :param what: What it is, for the error message (e.g. ``"token in its password field"``).
        :return: The stripped credential.
        :raises CrmConfigurationError: When the value is ``None``, empty or only whitespace.
        """
        if value is None or not str(value).strip():
            raise CrmConfigurationError(f"{self.vendor}: connection {self.conn_id!r} has no {what}")
        token = str(value).strip()
        mask_secret(token)
        return token

    def token(self) -> str:
        """The bearer token; by default the connection's password."""
        return self.secret(self.connection.password, "token in its password field")

    def base_url(self) -> str:
        """The API's base URL; by default the connection's host."""
        return self.checked_url(self.connection.host or "")

    def checked_url(self, raw: str) -> str:
        """A checked base URL; the connection's own host is completed by its port and schema.

        Airflow keeps a connection's port and URI path apart from its host (``kustomer://...@host:8443/v``
        gives host ``host``, port 8443, schema ``v``), so they are put back here: the port goes into
        the URL unless the host names a port already (a different one is an error), the schema is
        appended to the host's path. Port 0 counts as no port (some UI forms send it for none).

        :param raw: A base URL or bare host (no scheme means https; plain ``http://`` needs a loopback
            host or the extra ``allow_insecure_http``).
        :return: ``scheme://host[:port][/path]`` without a trailing slash.
        :raises CrmConfigurationError: When the URL is unusable, or its port differs from the port field.
        """
        url = normalise_base_url(
            raw, vendor=self.vendor, allow_insecure_http=self.bool_extra("allow_insecure_http", False)
        )
        host = (self.connection.host or "").strip()
        return self._with_port_and_schema(url) if host and raw.strip() == host else url

    def connection_port(self) -> int | None:
        """The connection's port field, ``None`` when unset or 0."""
        port = self.connection.port
        if port in (None, "", 0, "0"):
            return None
        try:
            number = int(port)
        except (TypeError, ValueError):
            number = -1
        if not 0 < number < 65536:
            raise CrmConfigurationError(
                f"{self.vendor}: connection {self.conn_id!r} has port {port!r}; use a number from 1 to 65535"
            )
        return number

    def _with_port_and_schema(self, url: str) -> str:
        parts = urlsplit(url)
        netloc, path = parts.netloc, parts.path
        port = self.connection_port()
        if port is not None:
            if parts.port is None:
                netloc = f"{netloc}:{port}"
            elif parts.port != port:
                raise CrmConfigurationError(
                    f"{self.vendor}: connection {self.conn_id!r} names port {parts.port} in its host and "
                    f"port {port} in its port field; keep one"
                )
        schema = str(self.connection.schema or "").strip().strip("/")
        if schema:
            path = f"{path}/{quote(schema, safe='/')}"
        return urlunsplit((parts.scheme, netloc, path, "", ""))

    def timeouts(self) -> Timeouts:
        """Connect and read timeouts in seconds: extras ``connect_timeout``/``read_timeout``, else the defaults."""
        return Timeouts(
            connect=self.float_extra("connect_timeout", Timeouts.connect),
            read=self.float_extra("read_timeout", Timeouts.read),
        )

    def retry_settings(self) -> RetrySettings:
        """Attempts per request: extra ``max_attempts`` (at least 1), else the default."""
        attempts = int(self.float_extra("max_attempts", RetrySettings.max_attempts))
        return RetrySettings(max_attempts=max(1, attempts))

    def rate_limit(self) -> float | None:
        """Requests per second for this connection: extra ``rate_limit_per_second`` (0 = no limit),
        else the vendor's documented default."""
        value = self.extra("rate_limit_per_second")
        if value is None:
            return self.default_rate_limit
        try:
            rate = float(value)
        except (TypeError, ValueError):
            raise CrmConfigurationError(
                f"{self.vendor}: connection {self.conn_id!r} extra 'rate_limit_per_second' must be a number"
            ) from None
        return rate if rate > 0 else None

    # -- the transport ----------------------------------------------------------------------

    @cached_property
    def transport(self) -> HttpTransport:
        """One pooled session per hook instance, reused by every call."""
        if self.connection_port() is not None and not (self.connection.host or "").strip():
            raise CrmConfigurationError(
                f"{self.vendor}: connection {self.conn_id!r} has a port but no host; "
                "put the base URL (with its port) in the host"
            )
        return HttpTransport(
            base_url=self.base_url(),
            rules=self.vendor_rules,
            conn_id=self.conn_id,
            token_source=self.token_source,
            timeouts=self.timeouts(),
            retry=self.retry_settings(),
            verify=self.bool_extra("verify_ssl", True),
            limiter=self.limiter(),
        )

    def rate_limit_share(self) -> float:
        """Share of the advertised limit to use without an explicit rate: extra ``rate_limit_share``, default 0.9.

        :raises CrmConfigurationError: When the value is not a number above 0 and at most 1.
        """
        share = self.float_extra("rate_limit_share", DEFAULT_RATE_LIMIT_SHARE)
        if not share <= 1:
            raise CrmConfigurationError(
                f"{self.vendor}: connection {self.conn_id!r} extra 'rate_limit_share' must be above 0 and at most 1, "
                f"got {self.extra('rate_limit_share')!r}"
            )
        return share

    def limiter(self, rate: float | None = None) -> RateLimiter | None:
        """The limiter every hook of this connection shares in this process (``None``: unlimited).

        An explicit rate (``rate``, or the extra ``rate_limit_per_second``) is a ceiling that a lower
        advertised limit can only lower. Without one the limiter starts at the vendor's documented
        default and follows :meth:`rate_limit_share` of the limit the vendor's headers advertise.

        :param rate: Requests per second; ``None`` takes :meth:`rate_limit`, ``0`` means no limiter.
        :raises CrmConfigurationError: When ``rate_limit_share`` or ``rate_limit_per_second`` is unusable.
        """
        share = self.rate_limit_share()
        explicit = rate is not None or self.extra("rate_limit_per_second") is not None
        rate = rate if rate is not None else self.rate_limit()
        if not rate:
            return None
        return shared_limiter(self.vendor, self.conn_id, rate, share=None if explicit else share)

    def use_rate_limit(self, rate: float | None) -> None:
        """Override the connection's rate for this hook (e.g. a bulk operator's ``rate_limit``).

        :param rate: Requests per second; ``0`` or less removes the limit, ``None`` keeps the connection's rate.
        """
        if rate is not None:
            self.transport.limiter = self.limiter(rate) if rate > 0 else None

    @cached_property
    def token_source(self) -> Callable[[], str]:
        """Where the transport gets the bearer token; OAuth hooks return a :class:`CachedToken`."""
        token = self.token()
        return lambda: token

    def request_token(
        self, url: str, path: str, *, data: dict[str, Any], auth: requests.auth.AuthBase | None = None
    ) -> IssuedToken:
        """POST to an OAuth token endpoint (without the bearer token) and read the issued token.

        Asking for a token twice is harmless, so the call is retried like any idempotent one.

        :param url: The token endpoint's base URL, used as given.
        :param path: Appended to ``url`` (``""`` when ``url`` is the whole endpoint).
        :param data: The form fields to send (e.g. ``grant_type``), form-encoded.
        :param auth: How the client authenticates (e.g. :class:`~requests.auth.HTTPBasicAuth`); ``None`` for none.
        :return: The token from ``access_token`` (or ``token``), with ``expires_in`` when it is a number.
        :raises CrmApiError: When the answer is not JSON or carries no token (or, as any call, is an error).
        """
        transport = HttpTransport(
            base_url=url,
            rules=self.vendor_rules,
            conn_id=self.conn_id,
            timeouts=self.timeouts(),
            retry=self.retry_settings(),
            verify=self.bool_extra("verify_ssl", True),
        )
        try:
            response = transport.request("POST", path, data=data, auth=auth, idempotent=True)
        finally:
            transport.close()
        body = require_json(response, self.vendor)
        token = (body.get("access_token") or body.get("token")) if isinstance(body, dict) else None
        if not token:
            raise CrmApiError(
                "the token endpoint answered without an access_token", vendor=self.vendor, conn_id=self.conn_id
            )
        expires_in = body.get("expires_in")
        return IssuedToken(str(token), float(expires_in) if isinstance(expires_in, (int, float)) else None)

    def get_conn(self) -> HttpTransport:
        """The hook's :attr:`transport` (Airflow's ``get_conn`` convention)."""
        return self.transport

    def close(self) -> None:
        """Close the pooled session if one was opened; a later call opens a new one."""
        if "transport" in self.__dict__:
            self.transport.close()
            del self.__dict__["transport"]

    # -- links to records --------------------------------------------------------------------

    def record_url(self, **ids: Any) -> str | None:
        """Where a record can be seen in the vendor's UI, or ``None`` when it can't be derived.

        The connection extra ``record_url_template`` (e.g.
        ``https://acme.kustomerapp.com/app/klasses/{klass}/{id}``) wins; its placeholders are the
        ids the operator knows. Without it, vendors derive what they can (:meth:`default_record_url`).

        :param ids: The record's ids by placeholder name (e.g. ``id``, ``klass``, ``customer_id``); values
            are percent-encoded, ``None`` values left out.
        """
        template = self.extra("record_url_template")
        if template:
            try:
                return str(template).format_map({k: quote(str(v), safe="") for k, v in ids.items() if v is not None})
            except (KeyError, ValueError, IndexError):
                self.log.warning("record_url_template of %s names an unknown placeholder; no link", self.conn_id)
                return None
        return self.default_record_url(**ids)

    def default_record_url(self, **ids: Any) -> str | None:
        """The vendor's own link to a record, used by :meth:`record_url` without a template; ``None`` here.

        :param ids: The record's ids by name, as given to :meth:`record_url`.
        """
        return None

    # -- the UI's Test button ---------------------------------------------------------------

    def probe(self) -> str:
        """Make one cheap read-only call; return what it proved. Subclasses implement it."""
        raise NotImplementedError

    def test_connection(self) -> tuple[bool, str]:
        """Read-only check used by the Airflow UI's Test button; explains failures plainly."""
        try:
            return True, self.probe()
        except CrmAuthenticationError as exc:
            return False, f"{self.vendor} refused the credentials (HTTP {exc.status or 401}): {exc.message}"
        except CrmPermissionError as exc:
            return (
                False,
                f"{self.vendor} accepted the credentials but they lack a scope or role: {exc.message}",
            )
        except CrmNotFoundError:
            return False, f"{self.vendor} answered 404: the base URL does not look like the {self.vendor} API"
        except CrmConnectionError as exc:
            return False, f"Could not reach {self.vendor} at {self._safe_base_url()}: {exc}"
        except (CrmApiError, CrmConfigurationError, CrmError) as exc:
            return False, str(exc)

    def _safe_base_url(self) -> str:
        try:
            return self.base_url()
        except CrmError:
            return "the configured host"
