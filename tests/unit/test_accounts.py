"""Accounts: registration, login, refresh-token rotation, API tokens, authentication."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from adapters.auth.api_tokens import Sha256ApiTokenCodec
from application.accounts import (
    BAD_CREDENTIALS,
    Credentials,
    IssueApiToken,
    LogIn,
    RefreshAccessToken,
    RegisterUser,
    RegisterUserRequest,
    RevokeApiToken,
    RevokeApiTokenRequest,
    SignedIn,
)
from application.authentication import Authenticate
from domain.errors import AuthenticationFailed, InvalidInput, UsernameTaken
from domain.users import User
from tests.unit.in_memory import (
    FakeClock,
    FakePasswordHasher,
    FakeTokenIssuer,
    FakeUnitOfWork,
    fake_hash,
)

PASSWORD = "correct horse battery"


@pytest.fixture
def register(
    uow: FakeUnitOfWork, hasher: FakePasswordHasher, tokens: FakeTokenIssuer, clock: FakeClock
) -> RegisterUser:
    return RegisterUser(uow, hasher, tokens, clock)


@pytest.fixture
def login(uow: FakeUnitOfWork, hasher: FakePasswordHasher, tokens: FakeTokenIssuer) -> LogIn:
    return LogIn(uow, hasher, tokens)


@pytest.fixture
def refresh(uow: FakeUnitOfWork, tokens: FakeTokenIssuer, clock: FakeClock) -> RefreshAccessToken:
    return RefreshAccessToken(uow, tokens, clock)


@pytest.fixture
def issue_api_token(
    uow: FakeUnitOfWork,
    hasher: FakePasswordHasher,
    codec: Sha256ApiTokenCodec,
    clock: FakeClock,
) -> IssueApiToken:
    return IssueApiToken(uow, hasher, codec, clock)


@pytest.fixture
def revoke_api_token(uow: FakeUnitOfWork, codec: Sha256ApiTokenCodec) -> RevokeApiToken:
    return RevokeApiToken(uow, codec)


@pytest.fixture
def authenticate(
    uow: FakeUnitOfWork, tokens: FakeTokenIssuer, codec: Sha256ApiTokenCodec
) -> Authenticate:
    return Authenticate(uow, tokens, codec)


def seed(uow: FakeUnitOfWork, username: str = "alice", *, is_active: bool = True) -> User:
    return uow.seed_user(username, password_hash=fake_hash(PASSWORD), is_active=is_active)


# ---- RegisterUser ------------------------------------------------------------------------------


async def test_register_stores_the_user_with_a_hashed_password_and_signs_in(
    register: RegisterUser, uow: FakeUnitOfWork, tokens: FakeTokenIssuer, clock: FakeClock
) -> None:
    signed_in = await register(
        RegisterUserRequest(username="alice", email="alice@example.com", password=PASSWORD)
    )

    assert uow.commits == 1
    [stored] = uow.state.users.values()
    assert (stored.username, stored.email, stored.is_staff, stored.is_active) == (
        "alice",
        "alice@example.com",
        False,
        True,
    )
    assert stored.password_hash == fake_hash(PASSWORD) != PASSWORD
    assert signed_in.user.id == stored.id
    assert stored.date_joined == clock.now()
    assert tokens.access_user_id(signed_in.access) == stored.id
    [record] = uow.state.refresh_tokens.values()
    assert record.user_id == stored.id
    assert record.jti == tokens.refresh_claims(signed_in.refresh).jti


async def test_the_plain_password_is_stored_nowhere(
    register: RegisterUser, uow: FakeUnitOfWork
) -> None:
    await register(
        RegisterUserRequest(username="alice", email="alice@example.com", password=PASSWORD)
    )

    everything_stored = repr(uow.state)
    assert "alice@example.com" in everything_stored
    assert PASSWORD not in everything_stored


async def test_register_refuses_a_taken_username_and_stores_nothing_more(
    register: RegisterUser, uow: FakeUnitOfWork
) -> None:
    seed(uow, "alice")

    with pytest.raises(InvalidInput) as raised:
        await register(
            RegisterUserRequest(username="alice", email="other@example.com", password=PASSWORD)
        )

    assert set(raised.value.field_errors) == {"username"}
    assert [u.email for u in uow.state.users.values()] == ["alice@example.com"]
    assert uow.state.refresh_tokens == {}
    assert uow.commits == 0


async def test_register_reports_every_invalid_field_and_stores_nothing(
    register: RegisterUser, uow: FakeUnitOfWork
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await register(RegisterUserRequest(username="no spaces", email="nope", password="1234"))

    assert set(raised.value.field_errors) == {"username", "email", "password"}
    assert uow.state.users == {}
    assert uow.state.refresh_tokens == {}
    assert uow.commits == 0


async def test_register_can_make_staff(register: RegisterUser, uow: FakeUnitOfWork) -> None:
    await register(
        RegisterUserRequest(
            username="root", email="root@example.com", password=PASSWORD, is_staff=True
        )
    )
    [stored] = uow.state.users.values()
    assert stored.is_staff


# ---- LogIn ---------------------------------------------------------------------------------


async def test_login_signs_in_with_a_new_token_family(
    login: LogIn, uow: FakeUnitOfWork, tokens: FakeTokenIssuer
) -> None:
    alice = seed(uow)

    first = await login(Credentials(username="alice", password=PASSWORD))
    second = await login(Credentials(username="alice", password=PASSWORD))

    assert first.user.id == alice.id
    assert tokens.access_user_id(first.access) == alice.id
    families = {r.family_id for r in uow.state.refresh_tokens.values()}
    assert len(uow.state.refresh_tokens) == 2
    assert len(families) == 2
    assert tokens.refresh_claims(second.refresh).family_id in families


async def test_wrong_password_and_unknown_user_fail_alike(
    login: LogIn, uow: FakeUnitOfWork
) -> None:
    seed(uow)

    with pytest.raises(AuthenticationFailed) as wrong_password:
        await login(Credentials(username="alice", password="not the password"))
    with pytest.raises(AuthenticationFailed) as unknown_user:
        await login(Credentials(username="mallory", password=PASSWORD))

    assert wrong_password.value.message == unknown_user.value.message == BAD_CREDENTIALS
    assert str(wrong_password.value) == str(unknown_user.value)
    assert type(wrong_password.value) is type(unknown_user.value)
    assert uow.state.refresh_tokens == {}


async def test_an_inactive_user_cannot_log_in(login: LogIn, uow: FakeUnitOfWork) -> None:
    seed(uow, is_active=False)

    with pytest.raises(AuthenticationFailed) as raised:
        await login(Credentials(username="alice", password=PASSWORD))

    assert raised.value.message == BAD_CREDENTIALS
    assert uow.state.refresh_tokens == {}


# ---- RefreshAccessToken ------------------------------------------------------------------------


async def _signed_in(login: LogIn, uow: FakeUnitOfWork, username: str = "alice") -> SignedIn:
    seed(uow, username)
    return await login(Credentials(username=username, password=PASSWORD))


async def test_refresh_rotates_within_the_family(
    login: LogIn, refresh: RefreshAccessToken, uow: FakeUnitOfWork, tokens: FakeTokenIssuer
) -> None:
    signed_in = await _signed_in(login, uow)

    second = await refresh(signed_in.refresh)
    third = await refresh(second.refresh)

    assert tokens.access_user_id(third.access) == signed_in.user.id
    first_claims = tokens.refresh_claims(signed_in.refresh)
    records = uow.state.refresh_tokens
    assert len(records) == 3
    assert {r.family_id for r in records.values()} == {first_claims.family_id}
    assert records[first_claims.jti].used_at is not None
    assert records[tokens.refresh_claims(third.refresh).jti].used_at is None
    assert all(r.revoked_at is None for r in records.values())


async def test_a_used_refresh_token_is_refused(
    login: LogIn, refresh: RefreshAccessToken, uow: FakeUnitOfWork
) -> None:
    signed_in = await _signed_in(login, uow)
    await refresh(signed_in.refresh)

    with pytest.raises(AuthenticationFailed):
        await refresh(signed_in.refresh)


async def test_reusing_a_refresh_token_revokes_its_whole_family(
    login: LogIn,
    refresh: RefreshAccessToken,
    uow: FakeUnitOfWork,
    tokens: FakeTokenIssuer,
    clock: FakeClock,
) -> None:
    signed_in = await _signed_in(login, uow)
    newest = await refresh(signed_in.refresh)
    clock.advance(minutes=5)

    with pytest.raises(AuthenticationFailed):
        await refresh(signed_in.refresh)  # replayed: stolen, say

    family = tokens.refresh_claims(signed_in.refresh).family_id
    assert all(
        r.revoked_at == clock.now()
        for r in uow.state.refresh_tokens.values()
        if r.family_id == family
    )
    with pytest.raises(AuthenticationFailed):
        await refresh(newest.refresh)  # the thief's or the owner's newest token is dead too


async def test_a_replayed_refresh_token_stops_that_logins_access_tokens_at_once(
    login: LogIn, refresh: RefreshAccessToken, authenticate: Authenticate, uow: FakeUnitOfWork
) -> None:
    stolen = await _signed_in(login, uow)
    laptop = await login(Credentials(username="alice", password=PASSWORD))
    thiefs = await refresh(stolen.refresh)
    assert (await authenticate.with_access_token(thiefs.access)).username == "alice"

    with pytest.raises(AuthenticationFailed):
        await refresh(stolen.refresh)  # the owner's copy, replayed: the family is revoked

    for access in (stolen.access, thiefs.access):
        with pytest.raises(AuthenticationFailed):
            await authenticate.with_access_token(access)
    assert (await authenticate.with_access_token(laptop.access)).username == "alice"


async def test_revoking_a_family_leaves_other_logins_working(
    login: LogIn, refresh: RefreshAccessToken, uow: FakeUnitOfWork
) -> None:
    phone = await _signed_in(login, uow)
    laptop = await login(Credentials(username="alice", password=PASSWORD))
    await refresh(phone.refresh)
    with pytest.raises(AuthenticationFailed):
        await refresh(phone.refresh)

    assert (await refresh(laptop.refresh)).refresh


async def test_refresh_refuses_unknown_or_garbage_tokens(
    refresh: RefreshAccessToken, uow: FakeUnitOfWork, tokens: FakeTokenIssuer
) -> None:
    seed(uow)
    never_stored = tokens.issue(1, "family-x").refresh
    for token in ["", "garbage", never_stored]:
        with pytest.raises(AuthenticationFailed):
            await refresh(token)
    assert uow.state.refresh_tokens == {}


async def test_refresh_refuses_an_expired_token(
    login: LogIn, refresh: RefreshAccessToken, uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    signed_in = await _signed_in(login, uow)
    clock.advance(days=2)
    with pytest.raises(AuthenticationFailed):
        await refresh(signed_in.refresh)


async def test_refresh_refuses_a_user_deactivated_since_login(
    login: LogIn, refresh: RefreshAccessToken, uow: FakeUnitOfWork, tokens: FakeTokenIssuer
) -> None:
    signed_in = await _signed_in(login, uow)
    uow.state.users[signed_in.user.id] = replace(
        uow.state.users[signed_in.user.id], is_active=False
    )

    with pytest.raises(AuthenticationFailed):
        await refresh(signed_in.refresh)

    assert len(uow.state.refresh_tokens) == 1, "no new token was stored"
    jti = tokens.refresh_claims(signed_in.refresh).jti
    assert uow.state.refresh_tokens[jti].used_at is None, "the failed refresh was rolled back"


# ---- API tokens and Authenticate ------------------------------------------------------------


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def test_an_api_token_is_stored_only_as_its_digest(
    issue_api_token: IssueApiToken, authenticate: Authenticate, uow: FakeUnitOfWork
) -> None:
    alice = seed(uow)

    token = await issue_api_token(Credentials(username="alice", password=PASSWORD))

    assert list(uow.state.api_tokens) == [sha256(token)]
    row = uow.state.api_tokens[sha256(token)]
    assert row.user_id == alice.id
    assert token not in {row.token_digest, str(row.user_id)}
    assert (await authenticate.with_api_token(token)).id == alice.id


async def test_each_issue_makes_a_new_token(
    issue_api_token: IssueApiToken, uow: FakeUnitOfWork
) -> None:
    seed(uow)
    first = await issue_api_token(Credentials(username="alice", password=PASSWORD))
    second = await issue_api_token(Credentials(username="alice", password=PASSWORD))
    assert first != second
    assert set(uow.state.api_tokens) == {sha256(first), sha256(second)}


async def test_no_api_token_for_bad_credentials(
    issue_api_token: IssueApiToken, uow: FakeUnitOfWork
) -> None:
    seed(uow)
    seed(uow, "bob", is_active=False)
    for username, password in [
        ("alice", "wrong password"),
        ("nobody", PASSWORD),
        ("bob", PASSWORD),
    ]:
        with pytest.raises(AuthenticationFailed) as raised:
            await issue_api_token(Credentials(username=username, password=password))
        assert raised.value.message == BAD_CREDENTIALS
    assert uow.state.api_tokens == {}


async def test_revoking_the_presented_token_kills_only_that_token(
    issue_api_token: IssueApiToken,
    revoke_api_token: RevokeApiToken,
    authenticate: Authenticate,
    uow: FakeUnitOfWork,
) -> None:
    alice = seed(uow)
    presented = await issue_api_token(Credentials(username="alice", password=PASSWORD))
    other = await issue_api_token(Credentials(username="alice", password=PASSWORD))

    await revoke_api_token(RevokeApiTokenRequest(user_id=alice.id, presented_token=presented))

    with pytest.raises(AuthenticationFailed):
        await authenticate.with_api_token(presented)
    assert (await authenticate.with_api_token(other)).id == alice.id


async def test_revoking_without_a_presented_token_kills_all_of_the_users_tokens(
    issue_api_token: IssueApiToken,
    revoke_api_token: RevokeApiToken,
    authenticate: Authenticate,
    uow: FakeUnitOfWork,
) -> None:
    alice, bob = seed(uow), seed(uow, "bob")
    alices = [await issue_api_token(Credentials(username="alice", password=PASSWORD)) for _ in "ab"]
    bobs = await issue_api_token(Credentials(username="bob", password=PASSWORD))

    await revoke_api_token(RevokeApiTokenRequest(user_id=alice.id))

    for token in alices:
        with pytest.raises(AuthenticationFailed):
            await authenticate.with_api_token(token)
    assert (await authenticate.with_api_token(bobs)).id == bob.id


async def test_an_unknown_api_token_fails(authenticate: Authenticate, uow: FakeUnitOfWork) -> None:
    seed(uow)
    with pytest.raises(AuthenticationFailed):
        await authenticate.with_api_token("0" * 40)


async def test_access_tokens_authenticate_active_users_only(
    login: LogIn,
    authenticate: Authenticate,
    uow: FakeUnitOfWork,
    tokens: FakeTokenIssuer,
) -> None:
    signed_in = await _signed_in(login, uow)
    assert (await authenticate.with_access_token(signed_in.access)).id == signed_in.user.id

    with pytest.raises(AuthenticationFailed):
        await authenticate.with_access_token(signed_in.refresh)
    with pytest.raises(AuthenticationFailed):
        await authenticate.with_access_token(tokens.issue(999, "f").access)

    uow.state.users[signed_in.user.id] = replace(
        uow.state.users[signed_in.user.id], is_active=False
    )
    with pytest.raises(AuthenticationFailed):
        await authenticate.with_access_token(signed_in.access)


async def test_an_api_token_of_a_deactivated_user_fails(
    issue_api_token: IssueApiToken, authenticate: Authenticate, uow: FakeUnitOfWork
) -> None:
    alice = seed(uow)
    token = await issue_api_token(Credentials(username="alice", password=PASSWORD))
    uow.state.users[alice.id] = replace(alice, is_active=False)

    with pytest.raises(AuthenticationFailed):
        await authenticate.with_api_token(token)


class _WatchingHasher(FakePasswordHasher):
    """Records whether a unit of work was open each time a password was checked."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow
        self.checked_inside_a_transaction: list[bool] = []

    async def verify(self, password_hash: str, password: str) -> bool:
        self.checked_inside_a_transaction.append(self._uow.in_transaction)
        return await super().verify(password_hash, password)

    async def burn_time(self, password: str) -> None:
        self.checked_inside_a_transaction.append(self._uow.in_transaction)


async def test_passwords_are_checked_outside_any_transaction(
    uow: FakeUnitOfWork, tokens: FakeTokenIssuer, clock: FakeClock
) -> None:
    """argon2 takes tens of milliseconds; on SQLite a transaction holds the database's
    only write lock, so a login must not keep one open while the password is checked."""
    seed(uow)
    hasher = _WatchingHasher(uow)
    await LogIn(uow, hasher, tokens)(Credentials(username="alice", password=PASSWORD))
    await IssueApiToken(uow, hasher, Sha256ApiTokenCodec(), clock)(
        Credentials(username="alice", password=PASSWORD)
    )
    with pytest.raises(AuthenticationFailed):
        await LogIn(uow, hasher, tokens)(Credentials(username="nobody", password=PASSWORD))
    assert hasher.checked_inside_a_transaction == [False, False, False]
    assert len(uow.state.refresh_tokens) == 1
    assert len(uow.state.api_tokens) == 1


@pytest.mark.parametrize("variant", ["ALICE", "Alice", "ａｌｉｃｅ"])
async def test_a_username_is_taken_whatever_its_case_or_width(
    register: RegisterUser, uow: FakeUnitOfWork, variant: str
) -> None:
    seed(uow, "alice")

    with pytest.raises(UsernameTaken):
        await register(
            RegisterUserRequest(username=variant, email="e@example.com", password=PASSWORD)
        )


async def test_a_full_width_username_is_stored_normalised_and_logs_in_either_way(
    register: RegisterUser, login: LogIn
) -> None:
    signed_in = await register(
        RegisterUserRequest(username="ｂｏｂ", email="bob@example.com", password=PASSWORD)
    )

    assert signed_in.user.username == "bob"
    assert (await login(Credentials(username="BOB", password=PASSWORD))).user.username == "bob"
