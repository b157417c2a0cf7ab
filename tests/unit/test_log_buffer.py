"""An attempt's log buffer: complete lines per flush, the rest at the end; a chunk's worth
flushes everything, in chunks of at most 64 KiB cut at line ends (never inside a
character); the cap ends the stream with one truncation marker; masking sees a secret
whole even when a long line is flushed in pieces."""

from __future__ import annotations

from orchestrator.model.records import truncation_marker
from orchestrator.observability.masking import MASK, Masker
from workers.log_capture import _DATA, _FULL, CHUNK_BYTES, AttemptLog

KIB = 1024


def _log(max_bytes: int = 8 * KIB * KIB, secrets: tuple[str, ...] = ()) -> AttemptLog:
    return AttemptLog("r" * 32, "t", 1, masker=Masker(secrets), max_bytes=max_bytes)


def _size(text: str) -> int:
    return len(text.encode())


def test_complete_lines_go_first_and_the_partial_line_at_the_end() -> None:
    log = _log()
    assert log.write("one\ntwo\nthr") == _DATA
    assert log.take(final=False) == [(1, "one\ntwo\n")]
    assert log.take(final=False) == []  # only a partial line left: it waits
    log.write("ee\nfou")
    assert log.take(final=False) == [(2, "three\n")]
    assert log.take(final=True) == [(3, "fou")]
    assert log.take(final=True) == []


def test_nothing_written_nothing_taken() -> None:
    log = _log()
    assert log.write("") == 0
    assert not log.touched
    assert log.take(final=True) == []


def test_a_chunks_worth_flushes_in_chunks_of_64_kib_cut_at_line_ends() -> None:
    log = _log()
    lines = [f"{i:03d}" + "x" * (40 * KIB) + "\n" for i in range(3)]
    signals = [log.write(line) for line in lines]
    assert signals == [_DATA, _FULL, _FULL]
    chunks = log.take(final=False)
    assert [seq for seq, _ in chunks] == [1, 2, 3]
    assert [data for _, data in chunks] == lines  # two lines would pass 64 KiB
    assert all(_size(data) <= CHUNK_BYTES for _, data in chunks)


def test_lines_are_packed_together_up_to_64_kib() -> None:
    log = _log()
    lines = [f"line {i:05d} " + "z" * 90 + "\n" for i in range(2000)]  # ~200 KiB
    for line in lines:
        log.write(line)
    chunks = [data for _, data in log.take(final=False)]
    assert "".join(chunks) == "".join(lines)
    assert all(c.endswith("\n") and _size(c) <= CHUNK_BYTES for c in chunks)
    assert len(chunks) == -(-_size("".join(lines)) // CHUNK_BYTES)  # as few as fit


def test_a_long_line_without_an_end_goes_in_64_kib_pieces_past_a_chunks_worth() -> None:
    log = _log()
    log.write("y" * (200 * KIB))
    chunks = [data for _, data in log.take(final=False)]
    assert [_size(c) for c in chunks] == [64 * KIB, 64 * KIB, 64 * KIB, 8 * KIB]


def test_pieces_are_never_cut_inside_a_character() -> None:
    log = _log()
    text = "é" * (50 * KIB) + "\n"  # 100 KiB of two-byte characters
    log.write(text)
    chunks = [data for _, data in log.take(final=False)]
    assert "".join(chunks) == text and len(chunks) == 2
    assert all(_size(c) <= CHUNK_BYTES for c in chunks)


def test_the_cap_ends_the_stream_with_one_marker() -> None:
    cap = 4 * KIB
    log = _log(max_bytes=cap)
    for i in range(100):
        log.write(f"{i:03d} " + "c" * 95 + "\n")  # 100 bytes a line
    chunks = [data for _, data in log.take(final=False)]
    assert chunks[-1] == truncation_marker(cap)
    assert sum(_size(c) for c in chunks[:-1]) == cap
    assert log.closed
    assert log.write("more\n") == 0
    assert log.take(final=True) == []


def test_output_that_fits_the_cap_exactly_has_no_marker_until_more_comes() -> None:
    cap = 4 * KIB
    log = _log(max_bytes=cap)
    log.write("a" * (cap - 1) + "\n")
    assert [d for _, d in log.take(final=True)] == ["a" * (cap - 1) + "\n"]
    log.write("b\n")
    assert log.take(final=True) == [(2, truncation_marker(cap))]


def test_memory_stays_bounded_past_the_cap() -> None:
    cap = 4 * KIB
    log = _log(max_bytes=cap)
    for _ in range(10_000):
        log.write("d" * 99 + "\n")
    assert log._pending <= cap + CHUNK_BYTES + 100


def test_a_secret_split_by_a_long_line_flush_is_masked_whole() -> None:
    secret = "s3cr3t-value-0123456789"
    log = _log(secrets=(secret,))
    log.write("y" * (70 * KIB) + secret[:9])
    first = "".join(d for _, d in log.take(final=False))
    log.write(secret[9:] + " after\n")
    rest = "".join(d for _, d in log.take(final=True))
    whole = first + rest
    assert secret not in whole and secret[:9] not in whole
    assert whole == "y" * (70 * KIB) + MASK + " after\n"


def test_each_chunk_is_masked() -> None:
    log = _log(secrets=("hunter2-hunter2",))
    log.write("password is hunter2-hunter2\n")
    assert log.take(final=False) == [(1, f"password is {MASK}\n")]
