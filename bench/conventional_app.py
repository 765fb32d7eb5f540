"""A FastAPI app written the way most FastAPI projects are, as the benchmark's yardstick.

The shape of the popular project templates' `GET /users/me`: a sync `def` route (run in the
thread pool), a SQLAlchemy ORM `Session` per request from a dependency, an HS256 JWT decoded
with PyJWT, the user loaded with one ORM query, a Pydantic response model. Nothing tuned.

    CONVENTIONAL_DATABASE_URL=postgresql+psycopg://... CONVENTIONAL_SECRET=... \
        uvicorn bench.conventional_app:app

Needs a sync driver: `pip install "psycopg[binary]"` (the `bench` extra).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Annotated

import jwt
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel, ConfigDict
from sqlalchemy import String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

SECRET = os.environ.get("CONVENTIONAL_SECRET", "change-me")
engine = create_engine(os.environ.get("CONVENTIONAL_DATABASE_URL", "postgresql+psycopg:///bench"))


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "conventional_users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    full_name: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    hashed_password: Mapped[str] = mapped_column(String(255))


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str | None
    is_active: bool


def get_db() -> Iterator[Session]:
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
TokenDep = Annotated[str, Depends(OAuth2PasswordBearer(tokenUrl="/login/access-token"))]


def get_current_user(session: SessionDep, token: TokenDep) -> User:
    try:
        payload = jwt.decode(token, SECRET, algorithms=["HS256"])
    except jwt.PyJWTError:
        raise HTTPException(status_code=403, detail="Could not validate credentials") from None
    user = session.get(User, uuid.UUID(payload["sub"]))
    if user is None:
        raise HTTPException(status_code=404, detail="User not found")
    if not user.is_active:
        raise HTTPException(status_code=400, detail="Inactive user")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
app = FastAPI()


@app.get("/users/me", response_model=UserPublic)
def read_user_me(current_user: CurrentUser) -> User:
    return current_user


def seed(email: str = "conventional@example.com") -> uuid.UUID:
    """Create the table and one user; returns its id (the benchmark mints a token for it)."""
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        user = User(email=email, full_name="Conventional", hashed_password="x")
        session.add(user)
        session.flush()
        return user.id
