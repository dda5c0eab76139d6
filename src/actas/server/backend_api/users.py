"""Backend API: users (create, list, count, get, update, delete, ban, unban)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from actas.server import users
from actas.server.http.bodies import RequestBody
from actas.server.http.origins import instance_of, request_origin
from actas.server.impersonation import preferences
from actas.server.resources import DeletedObject, UserObject, user_object

router = APIRouter(tags=["Users"])

Metadata = Annotated[dict[str, Any], Field(description="Arbitrary JSON, at most 8 KiB.")]


class CreateUserBody(RequestBody):
    email_address: list[Annotated[str, Field(max_length=320)]] | None = None
    username: Annotated[str, Field(max_length=64)] | None = None
    password: Annotated[str, Field(max_length=1024)] | None = None
    first_name: Annotated[str, Field(max_length=256)] | None = None
    last_name: Annotated[str, Field(max_length=256)] | None = None
    external_id: Annotated[str, Field(max_length=256)] | None = None
    public_metadata: Metadata | None = None
    private_metadata: Metadata | None = None
    unsafe_metadata: Metadata | None = None
    protected: bool = Field(False, description="actas: only actors with impersonate:protected "
                            "may impersonate this user.")
    impersonation_preference: Literal["allowed", "ask", "never"] | None = Field(
        None, description="actas: allowed, ask or never (see the update); null: the "
        "instance's default.")
    skip_password_checks: bool | None = Field(
        None, description="Accepted for Clerk compatibility; actas always checks length.")
    skip_password_requirement: bool | None = Field(
        None, description="Accepted for Clerk compatibility; a password is always optional.")


class UpdateUserBody(RequestBody):
    username: Annotated[str, Field(max_length=64)] | None = None
    password: Annotated[str, Field(max_length=1024)] | None = None
    first_name: Annotated[str, Field(max_length=256)] | None = None
    last_name: Annotated[str, Field(max_length=256)] | None = None
    external_id: Annotated[str, Field(max_length=256)] | None = None
    primary_email_address_id: str | None = None
    public_metadata: Metadata | None = None
    private_metadata: Metadata | None = None
    unsafe_metadata: Metadata | None = None
    protected: bool | None = None
    impersonation_preference: Literal["allowed", "ask", "never"] | None = Field(
        None, description="actas: may operators impersonate this user without asking "
        "(`allowed`), only with their grant (`ask`), or not at all (`never`, but for an "
        "owner's override)? null: the instance's default.")
    skip_password_checks: bool | None = None
    notify_primary_email_address_changed: bool | None = Field(
        None, description="Accepted for Clerk compatibility (Clerk's SDK always sends it); "
        "actas sends no email.")


class UserPage(BaseModel):
    data: list[UserObject]
    total_count: int


class TotalCount(BaseModel):
    object: str = "total_count"
    total_count: int


def _query(
    limit: Annotated[int, Query(ge=1, le=500)] = 10,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    order_by: Annotated[str, Query(max_length=40)] = "-created_at",
    query: Annotated[str | None, Query(max_length=256)] = None,
    email_address: Annotated[list[str] | None, Query()] = None,
    user_id: Annotated[list[str] | None, Query()] = None,
    username: Annotated[list[str] | None, Query()] = None,
    banned: bool | None = None,
    times: dict[str, int | None] | None = None,
) -> users.UserQuery:
    return users.UserQuery(limit=limit, offset=offset, order_by=order_by, query=query,
                           email_addresses=email_address or (), user_ids=user_id or (),
                           usernames=username or (), banned=banned, **(times or {}))


Millis = Annotated[int | None, Query(ge=0, le=2**62, description="Unix ms, exclusive")]


@router.post("/v1/users", response_model=UserObject, summary="Create a user")
def create_user(request: Request, body: CreateUserBody) -> UserObject:
    instance = instance_of(request)
    password_hash = users.hash_password(instance, body.password)  # outside the write lock
    with instance.transaction() as db:
        user = users.create(
            db, instance,
            email_addresses=body.email_address or (),
            username=body.username,
            password_hash=password_hash,
            first_name=body.first_name,
            last_name=body.last_name,
            external_id=body.external_id,
            public_metadata=body.public_metadata,
            private_metadata=body.private_metadata,
            unsafe_metadata=body.unsafe_metadata,
            protected=body.protected,
        )
        user.impersonation_preference = body.impersonation_preference  # no session to end yet
        db.flush()
        return user_object(user)


@router.get("/v1/users", response_model=list[UserObject] | UserPage, summary="List users")
def list_users(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 10,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    order_by: Annotated[str, Query(max_length=40)] = "-created_at",
    query: Annotated[str | None, Query(max_length=256)] = None,
    email_address: Annotated[list[str] | None, Query()] = None,
    user_id: Annotated[list[str] | None, Query()] = None,
    username: Annotated[list[str] | None, Query()] = None,
    banned: bool | None = None,
    created_at_after: Millis = None,
    created_at_before: Millis = None,
    last_active_at_after: Millis = None,
    last_active_at_before: Millis = None,
    last_sign_in_at_after: Millis = None,
    last_sign_in_at_before: Millis = None,
    paginated: bool = False,
) -> list[UserObject] | UserPage:
    times = {"created_after": created_at_after, "created_before": created_at_before,
             "last_active_after": last_active_at_after,
             "last_active_before": last_active_at_before,
             "last_sign_in_after": last_sign_in_at_after,
             "last_sign_in_before": last_sign_in_at_before}
    q = _query(limit, offset, order_by, query, email_address, user_id, username, banned, times)
    instance = instance_of(request)
    with instance.transaction() as db:
        data = [user_object(u) for u in users.list_users(db, q)]
        if paginated:
            return UserPage(data=data, total_count=users.count_users(db, q))
        return data


@router.get("/v1/users/count", response_model=TotalCount, summary="Count users")
def count_users(
    request: Request,
    query: Annotated[str | None, Query(max_length=256)] = None,
    email_address: Annotated[list[str] | None, Query()] = None,
    user_id: Annotated[list[str] | None, Query()] = None,
    username: Annotated[list[str] | None, Query()] = None,
    banned: bool | None = None,
) -> TotalCount:
    q = _query(query=query, email_address=email_address, user_id=user_id, username=username,
               banned=banned)
    instance = instance_of(request)
    with instance.transaction() as db:
        return TotalCount(total_count=users.count_users(db, q))


@router.get("/v1/users/{user_id}", response_model=UserObject, summary="Get a user")
def get_user(request: Request, user_id: str) -> UserObject:
    instance = instance_of(request)
    with instance.transaction() as db:
        return user_object(users.get(db, user_id))


@router.patch("/v1/users/{user_id}", response_model=UserObject, summary="Update a user")
def update_user(request: Request, user_id: str, body: UpdateUserBody) -> UserObject:
    instance = instance_of(request)
    changes = body.model_dump(exclude_unset=True, exclude={
        "skip_password_checks", "notify_primary_email_address_changed"})
    preference_given = "impersonation_preference" in changes
    preference = changes.pop("impersonation_preference", None)
    password_hash = users.hash_password(instance, changes.pop("password", None))  # unlocked
    with instance.transaction() as db:
        user = users.update_user(db, instance, users.get(db, user_id), changes,
                                 password_hash=password_hash)
        if preference_given and preference != user.impersonation_preference:
            preferences.set_preference(db, instance, user, preference,
                                       origin=request_origin(request), by="backend_api")
        return user_object(user)


class MetadataBody(RequestBody):
    public_metadata: Metadata | None = None
    private_metadata: Metadata | None = None
    unsafe_metadata: Metadata | None = None


@router.patch("/v1/users/{user_id}/metadata", response_model=UserObject,
              summary="Merge into a user's metadata (deeply; null removes a key)")
def merge_user_metadata(request: Request, user_id: str, body: MetadataBody) -> UserObject:
    instance = instance_of(request)
    with instance.transaction() as db:
        user = users.update_metadata(db, instance, users.get(db, user_id),
                                     body.model_dump(exclude_unset=True))
        return user_object(user)


@router.delete("/v1/users/{user_id}", response_model=DeletedObject, summary="Delete a user")
def delete_user(request: Request, user_id: str) -> DeletedObject:
    instance = instance_of(request)
    with instance.transaction() as db:
        users.delete_user(db, instance, users.get(db, user_id), origin=request_origin(request),
                          by="backend_api")
    return DeletedObject(id=user_id, object="user")


@router.post("/v1/users/{user_id}/ban", response_model=UserObject,
             summary="Ban a user and revoke their sessions")
def ban_user(request: Request, user_id: str) -> UserObject:
    instance = instance_of(request)
    with instance.transaction() as db:
        return user_object(users.set_banned(db, instance, users.get(db, user_id), True,
                                                 request_origin(request)))


@router.post("/v1/users/{user_id}/unban", response_model=UserObject, summary="Unban a user")
def unban_user(request: Request, user_id: str) -> UserObject:
    instance = instance_of(request)
    with instance.transaction() as db:
        return user_object(users.set_banned(db, instance, users.get(db, user_id), False,
                                                 request_origin(request)))
