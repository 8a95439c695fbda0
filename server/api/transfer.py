"""Pol.is CSV export and import of conversations."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import zipfile

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from werkzeug.utils import secure_filename

from polis_like.errors import InputError, NotFound
from polis_like.io.polis_csv import COMMENTS, PARTICIPANTS_VOTES, STATS_HISTORY, SUMMARY, VOTES
from polis_like.storage import conversations as store
from polis_like.storage.transfer import import_export, write_conversation

from ..compress import gzip_as_sent
from ..limits import check_text, require_media
from . import shapes
from .common import db, query_flag, require, signed_in

blueprint = Blueprint("transfer", __name__)

FILES = (VOTES, COMMENTS, PARTICIPANTS_VOTES, SUMMARY, STATS_HISTORY)
NAMES = tuple(name.removesuffix(".csv") for name in FILES)
#: What an import may be sent as: the zip itself, or a multipart upload of it.
UPLOAD_TYPES = ("application/zip", "application/octet-stream", "multipart/form-data")


#: Bytes of an export file sent at a time.
SEND_CHUNK = 1 << 20


def _export_folder(conversation_id: int, *, exact: bool) -> str:
    """A new temporary folder holding the five files of the conversation's export (written as
    they are read, chunk by chunk): the caller removes it."""
    folder = tempfile.mkdtemp(prefix="polis-like-export-")
    try:
        write_conversation(db(), conversation_id, folder, exact=exact)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def _send(path: str, folder: str, mimetype: str, filename: str) -> Response:
    """The file at ``path`` sent a chunk at a time (never whole in memory, gzipped as it goes
    when the client accepts it and the type is text); ``folder`` is removed once the response
    is done."""

    def chunks():
        with open(path, "rb") as file:
            while chunk := file.read(SEND_CHUNK):
                yield chunk

    response = Response(chunks(), mimetype=mimetype, headers=_attachment(filename))
    response.headers["Content-Length"] = str(os.path.getsize(path))
    response.call_on_close(lambda: shutil.rmtree(folder, ignore_errors=True))
    return gzip_as_sent(response)


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
    folder = _export_folder(conversation_id, exact=exact)
    return _send(
        os.path.join(folder, filename),
        folder,
        "text/csv",
        f"conversation-{conversation_id}-{filename}",
    )


@blueprint.get("/conversations/<id:conversation_id>/export.zip")
@require("moderator")
def export_zip(conversation_id: int):
    """The five files in a zip; ``?exact=1`` as for one file."""
    folder = _export_folder(conversation_id, exact=query_flag("exact", False))
    try:
        path = os.path.join(folder, "export.zip")
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in FILES:
                _add_to_zip(archive, os.path.join(folder, name), name)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return _send(path, folder, "application/zip", f"conversation-{conversation_id}.zip")


def _add_to_zip(archive: zipfile.ZipFile, path: str, name: str) -> None:
    """Add the file at ``path`` as ``ZipFile.writestr`` would add its bytes (the same entry:
    the time now, mode 0600), copied a chunk at a time."""
    info = zipfile.ZipInfo(name, date_time=time.localtime(time.time())[:6])
    info.compress_type = archive.compression
    info.external_attr = 0o600 << 16
    info.file_size = os.path.getsize(path)  # zip64 when large, as writestr decides
    with open(path, "rb") as source, archive.open(info, "w") as entry:
        shutil.copyfileobj(source, entry, SEND_CHUNK)


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
