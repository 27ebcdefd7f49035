"""Who may use the console, and what they may do: users, roles, sessions, API tokens and
the login's rate limit, all in Redis beside the alarm state (``<prefix>:console:*``), so
several console processes behind a load balancer share them and a restart logs nobody out.

- **Passwords** are hashed with argon2id (``argon2-cffi``'s defaults, RFC 9106's second
  recommended parameter set); a hash made with older parameters is upgraded at the next
  login. Verifying an unknown user still costs one hash, so timing does not tell which
  user names exist.
- **Roles** nest: ``viewer`` sees; ``nurse`` also acknowledges, snoozes, assigns and sets
  or clears a patient's manual care tags;
  ``physician`` also resolves by hand and overrides a rule for a patient; ``admin`` also
  manages users and cohorts.
- **Sessions** are random tokens (256 bits) in an HttpOnly, Secure, SameSite=Strict cookie;
  Redis holds only their SHA-256, so a read of Redis yields no usable session. A session
  carries its own CSRF token, expires after ``session_ttl_s`` without use.
- **API tokens** (``Authorization: Bearer ...``) are for other tools: stored hashed, named,
  revocable, carrying their user's role and cohorts. They need no CSRF token (no browser
  sends them by itself).
- **Login rate limit**: after ``max_failures`` failed logins for a user name within
  ``window_s`` (or 4x that many from one client address), logins are refused with 429 until
  the window has passed, whether the password is right or not.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass, field

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from vitalstream.errors import VitalstreamError

ROLES = ("viewer", "nurse", "physician", "admin")
_GRANTS = {"viewer": set(), "nurse": {"ack", "snooze", "assign", "tag"},
           "physician": {"resolve", "override"}, "admin": {"admin"}}
ALL_COHORTS = "*"


def permissions(role: str) -> frozenset[str]:
    """What a role may do: its own grants and those of every role below it.

    >>> sorted(permissions("nurse")), sorted(permissions("viewer"))
    (['ack', 'assign', 'snooze', 'tag'], [])
    >>> "ack" in permissions("admin") and "admin" not in permissions("physician")
    True
    """
    out: set[str] = set()
    for r in ROLES[:ROLES.index(role) + 1]:
        out |= _GRANTS[r]
    return frozenset(out)


class AuthError(VitalstreamError):
    def __init__(self, reason: str, detail: str, who: str | None = None) -> None:
        super().__init__("console.auth", who, reason, detail)


@dataclass(frozen=True)
class User:
    username: str
    role: str
    cohorts: tuple[str, ...] = ()
    password_hash: str = field(default="", repr=False)
    disabled: bool = False

    @property
    def permissions(self) -> frozenset[str]:
        return permissions(self.role)

    def sees(self, cohort: str | None) -> bool:
        """Whether this user may see a patient of ``cohort`` (None: in no cohort, which
        only a user of every cohort sees)."""
        return ALL_COHORTS in self.cohorts or (cohort is not None and cohort in self.cohorts)

    def public(self) -> dict:
        return {"username": self.username, "role": self.role, "cohorts": list(self.cohorts),
                "disabled": self.disabled}


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def valid_username(name: str) -> bool:
    """
    >>> valid_username("nurse.kim"), valid_username("a b"), valid_username("")
    (True, False, False)
    """
    return 0 < len(name) <= 64 and all(c.isalnum() or c in "._-@" for c in name) and name.isascii()


class Accounts:
    """Users, sessions, tokens and login failures under ``<prefix>:console``."""

    def __init__(self, client: redis.Redis, prefix: str = "vitalstream", *,
                 session_ttl_s: float = 8 * 3600.0, max_failures: int = 5,
                 window_s: float = 900.0, hasher: PasswordHasher | None = None) -> None:
        self.r = client
        self.base = f"{prefix}:console"
        self.session_ttl_s = session_ttl_s
        self.max_failures = max_failures
        self.window_s = window_s
        self.ph = hasher or PasswordHasher()
        self._dummy = self.ph.hash(secrets.token_hex(16))

    # -- users --

    def put_user(self, username: str, role: str, cohorts: list[str] | tuple[str, ...],
                 password: str | None = None, disabled: bool = False) -> User:
        if not valid_username(username):
            raise AuthError("bad_value", "a user name is 1-64 letters, digits or . _ - @", username)
        if role not in ROLES:
            raise AuthError("bad_value", f"role must be one of {', '.join(ROLES)}", username)
        old = self.user(username)
        if password is not None:
            if len(password) < 8:
                raise AuthError("bad_value", "a password needs at least 8 characters", username)
            pw_hash = self.ph.hash(password)
        elif old is not None:
            pw_hash = old.password_hash
        else:
            raise AuthError("bad_value", "a new user needs a password", username)
        u = User(username, role, tuple(dict.fromkeys(cohorts)), pw_hash, disabled)
        self.r.hset(f"{self.base}:users", username, json.dumps(asdict(u)))
        if disabled or (old is not None and password is not None):
            self.end_sessions(username)  # a disabled user or a new password: out everywhere
        return u

    def user(self, username: str) -> User | None:
        raw = self.r.hget(f"{self.base}:users", username)
        if raw is None:
            return None
        d = json.loads(raw)
        return User(d["username"], d["role"], tuple(d["cohorts"]), d["password_hash"],
                    d.get("disabled", False))

    def users(self) -> list[User]:
        return sorted((self.user(k.decode()) for k in self.r.hkeys(f"{self.base}:users")),
                      key=lambda u: u.username)

    # -- login --

    def _fail_keys(self, username: str, client: str) -> tuple[str, str]:
        return f"{self.base}:login-fail:user:{_sha(username)}", f"{self.base}:login-fail:ip:{client}"

    def retry_after_s(self, username: str, client: str) -> int:
        """Seconds until a login for ``username`` from ``client`` is accepted again (0: now)."""
        ku, kc = self._fail_keys(username, client)
        p = self.r.pipeline()
        p.get(ku).ttl(ku).get(kc).ttl(kc)
        nu, tu, nc, tc = p.execute()
        wait = 0
        if nu is not None and int(nu) >= self.max_failures:
            wait = max(wait, tu, 1)
        if nc is not None and int(nc) >= 4 * self.max_failures:
            wait = max(wait, tc, 1)
        return int(wait)

    def login(self, username: str, password: str, client: str = "") -> User:
        """The user, if the password is right and logins are not held back; else AuthError
        (reason ``rate_limited`` or ``bad_credentials``: which part was wrong is not told)."""
        wait = self.retry_after_s(username, client)
        if wait:
            raise AuthError("rate_limited", f"too many failed logins: try again in {wait} s", username)
        u = self.user(username)
        ok = False
        try:
            ok = self.ph.verify(u.password_hash if u is not None else self._dummy, password)
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or u is None or u.disabled:
            ku, kc = self._fail_keys(username, client)
            p = self.r.pipeline()
            for k in (ku, kc):
                p.incr(k)
                p.expire(k, int(self.window_s), nx=True)
            p.execute()
            raise AuthError("bad_credentials", "wrong user name or password", username)
        self.r.delete(self._fail_keys(username, client)[0])
        if self.ph.check_needs_rehash(u.password_hash):
            self.r.hset(f"{self.base}:users", username,
                        json.dumps(asdict(User(u.username, u.role, u.cohorts,
                                               self.ph.hash(password), u.disabled))))
        return u

    # -- sessions --

    def start_session(self, user: User) -> tuple[str, str]:
        """A new session: (cookie token, CSRF token)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        key = f"{self.base}:session:{_sha(token)}"
        p = self.r.pipeline()
        p.set(key, json.dumps({"user": user.username, "csrf": csrf,
                               "started_ns": time.time_ns()}), ex=int(self.session_ttl_s))
        p.sadd(f"{self.base}:sessions-of:{user.username}", _sha(token))
        p.execute()
        return token, csrf

    def session(self, token: str) -> tuple[User, str] | None:
        """The session's user and CSRF token (its idle timer restarted), or None."""
        key = f"{self.base}:session:{_sha(token)}"
        raw = self.r.get(key)
        if raw is None:
            return None
        d = json.loads(raw)
        u = self.user(d["user"])
        if u is None or u.disabled:
            self.r.delete(key)
            return None
        self.r.expire(key, int(self.session_ttl_s))
        return u, d["csrf"]

    def end_session(self, token: str) -> None:
        self.r.delete(f"{self.base}:session:{_sha(token)}")

    def end_sessions(self, username: str) -> None:
        ids = self.r.smembers(f"{self.base}:sessions-of:{username}")
        p = self.r.pipeline()
        for h in ids:
            p.delete(f"{self.base}:session:{h.decode()}")
        p.delete(f"{self.base}:sessions-of:{username}")
        p.execute()

    # -- API tokens --

    def create_token(self, username: str, name: str) -> str:
        if self.user(username) is None:
            raise AuthError("unknown_user", f"no user {username!r}", username)
        token = "vst_" + secrets.token_urlsafe(32)
        self.r.hset(f"{self.base}:tokens", _sha(token), json.dumps(
            {"user": username, "name": name, "created_ns": time.time_ns()}))
        return token

    def token_user(self, token: str) -> User | None:
        raw = self.r.hget(f"{self.base}:tokens", _sha(token))
        if raw is None:
            return None
        u = self.user(json.loads(raw)["user"])
        return None if u is None or u.disabled else u

    def revoke_tokens(self, username: str, name: str | None = None) -> int:
        gone = 0
        for h, raw in self.r.hgetall(f"{self.base}:tokens").items():
            d = json.loads(raw)
            if d["user"] == username and (name is None or d["name"] == name):
                gone += self.r.hdel(f"{self.base}:tokens", h)
        return gone
