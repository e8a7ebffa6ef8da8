"""Error pages in the site's own layout; a 500 never shows exception text."""

from __future__ import annotations

import logging

from flask import Flask, flash, g, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from intake.agent_client import ClientProofRefused, use_proof
from shared.db import DatabaseUnavailable
from shared.request_input import InputRefused

logger = logging.getLogger(__name__)

MESSAGES = {
    400: ("Bad request", "The request could not be understood."),
    403: ("Forbidden", "You may not do that."),
    404: ("Not found", "There is nothing here, or it is not yours to see."),
    405: ("Not allowed", "This page does not accept that kind of request."),
    413: ("Too large", "That request was too large."),
    429: ("Too many requests", "Too many attempts. Wait a while, then try again."),
}


def _page(status: int, title: str, message: str) -> ResponseReturnValue:
    return render_template("error.html", status=status, title=title, message=message), status


def install(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError) -> ResponseReturnValue:
        logger.info("form refused", extra={"error": "csrf"})
        return _page(
            400,
            "Form expired",
            "This form has expired or did not come from this site, so nothing was changed. "
            "Go back, reload the page and try again.",
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        if status >= 500:
            return _page(status, "Something went wrong", "Something went wrong on our side.")
        title, message = MESSAGES.get(status, ("Error", "The request could not be completed."))
        if request.blueprint == "hooks":  # called by other systems: the JSON shape, as its own answers
            return jsonify(error=title.lower().replace(" ", "_"), message=message), status
        response = exc.get_response()
        rendered = render_template("error.html", status=status, title=title, message=message)
        headers = {k: v for k, v in response.headers.items() if k in ("Allow", "Retry-After")}
        return rendered, status, headers

    @app.errorhandler(InputRefused)
    def _input_refused(exc: InputRefused) -> ResponseReturnValue:
        # Refused at the door (shared.request_input), before any view ran: nothing was changed.
        logger.info("input refused", extra={"error": exc.name, "error_class": type(exc).__name__})
        if request.blueprint == "hooks":
            return jsonify(exc.body()), exc.status
        return _page(exc.status, "Bad request", f"{exc.message} Nothing was changed.")

    @app.errorhandler(DatabaseUnavailable)
    def _database_unavailable(exc: DatabaseUnavailable) -> ResponseReturnValue:
        # The transaction rolled back, so nothing of this request was written.
        logger.warning("database unavailable", extra={"error_class": type(exc.__cause__).__name__})
        rendered = render_template(
            "error.html", status=503, title="Briefly unavailable",
            message="The service is briefly unavailable, and nothing was changed. "
                    "Please try again in a few seconds.",
        )
        return rendered, 503, {"Retry-After": str(exc.retry_after_seconds), "Cache-Control": "no-store"}

    @app.errorhandler(ClientProofRefused)
    def _proof_refused(exc: ClientProofRefused) -> ResponseReturnValue:
        # The session ended between this request's check and the agent's (or the database's):
        # nothing was done for it; the person signs in again.
        logger.info("client proof refused", extra={"error": exc.name})
        g.identity = None
        use_proof(None)
        g.drop_session_cookie = True
        flash("Your session has ended, so nothing was changed. Please sign in again.")
        return redirect(url_for("accounts.login"), 303)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        logger.error("unhandled error", exc_info=exc)
        return _page(500, "Something went wrong", "Something went wrong on our side.")
