"""Pol.is CSV export and import of conversations."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from werkzeug.utils import secure_filename

from polis_like.errors import InputError, NotFound
from polis_like.io.polis_csv import COMMENTS, PARTICIPANTS_VOTES, STATS_HISTORY, SUMMARY, VOTES
from polis_like.storage import conversations as store
from polis_like.storage.transfer import import_export, write_conversation

from ..limits import check_text, require_media
from . import shapes
from .common import db, query_flag, require, signed_in

blueprint = Blueprint("transfer", __name__)

FILES = (VOTES, COMMENTS, PARTICIPANTS_VOTES, SUMMARY, STATS_HISTORY)
NAMES = tuple(name.removesuffix(".csv") for name in FILES)
#: What an import may be sent as: the zip itself, or a multipart upload of it.
UPLOAD_TYPES = ("application/zip", "application/octet-stream", "multipart/form-data")


def _export_files(conversation_id: int, *, exact: bool) -> dict[str, bytes]:
    """The five files of the conversation's export, by file name."""
    session = db()
    with tempfile.TemporaryDirectory(prefix="polis-like-export-") as folder:
        write_conversation(session, conversation_id, folder, exact=exact)
        files = {}
        for name in FILES:
            with open(os.path.join(folder, name), "rb") as file:
                files[name] = file.read()
    return files


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


@blueprint.get("/conversations/<id:conversation_id>/export/<name>.csv")
@require("moderator")
def export_file(conversation_id: int, name: str):
    """One file; ``?exact=1`` writes texts as stored, formula-like ones included."""
    exact = query_flag("exact", False)
    store.get_conversation(db(), conversation_id)
    if name not in NAMES:
        raise NotFound(
            f"no export file {name}.csv; the files are {', '.join(f'{n}.csv' for n in NAMES)}"
        )
    filename = f"{name}.csv"
    data = _export_files(conversation_id, exact=exact)[filename]
    return Response(
        data, mimetype="text/csv", headers=_attachment(f"conversation-{conversation_id}-{filename}")
    )


@blueprint.get("/conversations/<id:conversation_id>/export.zip")
@require("moderator")
def export_zip(conversation_id: int):
    """The five files in a zip; ``?exact=1`` as for one file."""
    files = _export_files(conversation_id, exact=query_flag("exact", False))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return Response(
        buffer.getvalue(),
        mimetype="application/zip",
        headers=_attachment(f"conversation-{conversation_id}.zip"),
    )


@blueprint.post("/conversations/import")
@require("admin")
def import_conversation():
    """The export .zip as the body, or as the multipart field "file"; "topic" optional."""
    require_media(*UPLOAD_TYPES)
    topic = request.args.get("topic")
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise InputError("send the export .zip as the multipart field 'file'")
        topic = request.form.get("topic", topic)
        if topic is not None:
            check_text(topic)
        filename = secure_filename(upload.filename or "") or "upload.zip"
    else:
        upload = None
        filename = "upload.zip"
    if topic is not None and not topic.strip():
        topic = None
    owner_id = signed_in().id
    with tempfile.TemporaryDirectory(prefix="polis-like-import-") as folder:
        path = os.path.join(folder, filename)
        if upload is not None:
            upload.save(path)
        else:
            with open(path, "wb") as file:
                shutil.copyfileobj(request.stream, file)
        if os.path.getsize(path) == 0:
            raise InputError("the upload is empty; send the export as a .zip")
        try:
            conversation_id = import_export(
                current_app.extensions["polis_like.sessions"], path, topic=topic, owner_id=owner_id
            )
        except InputError as error:
            # Name the upload and the file inside it, not where it was saved.
            if error.path is not None and error.path.startswith(folder + os.sep):
                error.path = error.path[len(folder) + 1 :]
                error.args = (str(error),)
            raise
    with current_app.extensions["polis_like.sessions"]() as session:
        document = shapes.conversation_json(store.get_conversation(session, conversation_id))
    response = jsonify(document)
    response.status_code = 201
    response.headers["Location"] = url_for(
        "api.conversations.get_conversation", conversation_id=conversation_id
    )
    return response
