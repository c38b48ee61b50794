"""A FastAPI app whose login route is limited by Depends(RateLimit(..., store=...)).

The store URL comes from ``SEAWALL_TEST_STORE``; two uvicorn processes serving this app share
the limit through it.
"""

from __future__ import annotations

import os

from fastapi import Depends, FastAPI

from seawall.asgi import RateLimit, RateLimited, rate_limit_exceeded_handler

app = FastAPI()
app.add_exception_handler(RateLimited, rate_limit_exceeded_handler)
login_limit = RateLimit("3/hour", name="login", store=os.environ["SEAWALL_TEST_STORE"])


@app.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/login", dependencies=[Depends(login_limit)])
async def login() -> dict[str, str]:
    return {"pid": str(os.getpid())}
