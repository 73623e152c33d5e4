"""GET /: a small page to upload an image and see the top-5 classes as bars."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["ui"])
PAGE = Path(__file__).resolve().parent.parent / "static" / "index.html"


@cache
def _page() -> str:
    return PAGE.read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index() -> HTMLResponse:
    # The page only calls this origin; forbid everything else.
    csp = (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src blob:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'"
    )
    return HTMLResponse(
        _page(), headers={"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff"}
    )
