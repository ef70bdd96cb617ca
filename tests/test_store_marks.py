"""Store.write_object and the collectable-mark rule (kachery_flows._marks)."""

from __future__ import annotations

import os
from pathlib import Path

from kachery_flows import Store, _marks, get_default_store
from kachery_flows._default_store import default_store


def _write(store: Store, data: bytes, **kwargs: bool) -> str:
    return store.write_object(lambda w: w.write(data), "bytes", **kwargs).sha1


def test_the_action_cache_marks_only_what_it_created(store: Store) -> None:
    mine = store.put_bytes(b"stored on purpose").sha1
    assert _write(store, b"stored on purpose", collectable=True) == mine
    assert not store.cache_mark_path(mine).exists()  # the user's object stays unmarked
    cached = _write(store, b"memo result", collectable=True)
    assert store.cache_mark_path(cached) == _marks.mark_path(store.root, cached)
    assert store.cache_mark_path(cached).is_file()


def test_a_re_put_refreshes_the_mark_and_a_user_put_removes_it(store: Store) -> None:
    sha1 = _write(store, b"result", collectable=True)
    mark = store.cache_mark_path(sha1)
    os.utime(mark, (1, 1))
    _write(store, b"result", collectable=True)
    assert mark.stat().st_mtime > 1
    store.put_bytes(b"result")
    assert not mark.exists()


def test_write_object_uploads_unless_told_not_to(tmp_path: Path) -> None:
    zone = tmp_path / "zone"
    store = Store(tmp_path / "store", zone=f"file://{zone}", fsync=False)
    kept = store.write_object(lambda w: w.write(b"local"), "bytes", upload=False)
    sent = store.write_object(lambda w: w.write(b"shared"), "bytes", "s.bin")
    assert store.zone is not None
    assert store.zone.has(sent.sha1) and not store.zone.has(kept.sha1)
    assert sent.label == "s.bin" and sent.codec == "bytes"


def test_quarantine_moves_the_file_aside(store: Store) -> None:
    ref = store.put_bytes(b"x")
    moved = store.quarantine(store.object_path(ref))
    assert moved.parent == store.quarantine_dir and moved.read_bytes() == b"x"
    assert not store.exists(ref)


def test_refs_load_through_the_registered_default_store() -> None:
    assert default_store() is get_default_store()
    ref = get_default_store().put_text("hi", "a.txt")
    assert ref.load() == "hi" and Path(ref.path()).read_bytes() == b"hi"
