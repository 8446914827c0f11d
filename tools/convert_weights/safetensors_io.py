"""safetensors_io: a small, strict reader and writer of the safetensors format.

Written by hand because Debian ships no package of the Python `safetensors`
library, and jplprof's tools must run with Debian's Python alone.

The format (https://github.com/huggingface/safetensors):

    [8 bytes]  N, the header length, unsigned 64-bit little-endian
    [N bytes]  a JSON object, UTF-8:
                 {"<name>": {"dtype": "F32", "shape": [d0, d1, ...],
                             "data_offsets": [begin, end]},
                  ...,
                  "__metadata__": {"<key>": "<string value>", ...}}   (optional)
    [rest]     the data buffer; each tensor's bytes are buffer[begin:end],
               row-major, little-endian

Invariants this module writes and checks on reading:
  - only F32 tensors (all that jplprof stores);
  - the header is padded with spaces so that the data buffer starts at a
    multiple of 8 bytes from the file's start (floats are then aligned when
    the file is mmap-ed, which the C reader checks);
  - tensors are packed in name order, back to back: the byte ranges cover the
    data buffer exactly, with no hole and no overlap (the spec requires it);
  - end - begin == product(shape) * 4 for every tensor;
  - no duplicate JSON keys, no unknown fields, metadata values are strings.

Files are written to a temporary name in the destination folder, flushed,
fsync-ed, renamed over the destination, and the folder is fsync-ed, so an
interrupted write never leaves a half file under the final name.
"""

import json
import math
import os
import tempfile

import numpy as np

__all__ = ["SafetensorsError", "save", "load", "read_header"]

# safetensors dtype name -> (numpy dtype, little-endian, and its size in bytes).
_DTYPES = {"F32": np.dtype("<f4")}

HEADER_LEN_BYTES = 8
# The reference implementation refuses headers above 100 MB; so do we, which
# also bounds what a corrupt length field can make us allocate.
MAX_HEADER_BYTES = 100 * 1000 * 1000
DATA_ALIGN_BYTES = 8
METADATA_KEY = "__metadata__"


class SafetensorsError(Exception):
    """A file that is not valid safetensors, or a value that cannot be saved.

    The message names the file and the field at fault."""


def _check_name(name, where):
    if not isinstance(name, str) or not name:
        raise SafetensorsError(f"{where}: tensor name {name!r} is not a non-empty string")
    if name == METADATA_KEY:
        raise SafetensorsError(f"{where}: '{METADATA_KEY}' is reserved and cannot name a tensor")


def _build_header(tensors, metadata, where):
    """Returns (header bytes padded to alignment, list of (name, array) in data order)."""
    if not isinstance(tensors, dict):
        raise SafetensorsError(f"{where}: tensors must be a dict name -> numpy array")
    header = {}
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise SafetensorsError(f"{where}: metadata must be a dict str -> str")
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise SafetensorsError(
                    f"{where}: metadata entry {key!r}: {value!r}: keys and values must be strings")
        header[METADATA_KEY] = dict(sorted(metadata.items()))
    ordered = []
    offset = 0
    for name in sorted(tensors):
        _check_name(name, where)
        array = tensors[name]
        if not isinstance(array, np.ndarray):
            raise SafetensorsError(f"{where}: tensor '{name}' is a {type(array).__name__}, "
                                   "not a numpy array")
        if array.dtype != np.float32:
            raise SafetensorsError(f"{where}: tensor '{name}' has dtype {array.dtype}; "
                                   "only float32 is supported")
        array = np.asarray(array, dtype=_DTYPES["F32"], order="C")  # keeps 0-d shapes
        size = array.size * array.itemsize
        header[name] = {"dtype": "F32", "shape": [int(d) for d in array.shape],
                        "data_offsets": [offset, offset + size]}
        ordered.append((name, array))
        offset += size
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    pad = (-(HEADER_LEN_BYTES + len(text))) % DATA_ALIGN_BYTES
    text += b" " * pad
    if len(text) > MAX_HEADER_BYTES:
        raise SafetensorsError(f"{where}: header of {len(text)} bytes exceeds {MAX_HEADER_BYTES}")
    return text, ordered


def _fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(path, tensors, metadata=None):
    """Writes `tensors` (dict name -> float32 numpy array) and `metadata`
    (dict str -> str, optional) to `path` in the safetensors format.

    The write is atomic: a temporary file in the same folder is written,
    flushed, fsync-ed and renamed over `path`, then the folder is fsync-ed.
    On any error the temporary file is removed, `path` is untouched, and the
    error (SafetensorsError for bad input, OSError for I/O) propagates."""
    path = os.fspath(path)
    header, ordered = _build_header(tensors, metadata, path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                                    suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(len(header).to_bytes(HEADER_LEN_BYTES, "little"))
            f.write(header)
            for _, array in ordered:
                f.write(memoryview(array.reshape(-1)).cast("B"))
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file 0600; give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def _reject_duplicates(pairs, where):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise SafetensorsError(f"{where}: duplicate key {key!r} in header")
        obj[key] = value
    return obj


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_header(raw, file_size, where):
    """Validates a header; returns (entries sorted by begin offset, metadata, data start)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SafetensorsError(f"{where}: header is not valid UTF-8 ({e})") from None
    if not text.startswith("{"):
        raise SafetensorsError(f"{where}: header does not start with '{{'")
    try:
        header = json.loads(text, object_pairs_hook=lambda p: _reject_duplicates(p, where))
    except json.JSONDecodeError as e:
        raise SafetensorsError(f"{where}: header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{where}: header is not a JSON object")

    metadata = header.pop(METADATA_KEY, {})
    if not isinstance(metadata, dict):
        raise SafetensorsError(f"{where}: {METADATA_KEY} is not an object")
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise SafetensorsError(f"{where}: {METADATA_KEY}.{key} is a "
                                   f"{type(value).__name__}, not a string")

    data_start = HEADER_LEN_BYTES + len(raw)
    data_size = file_size - data_start
    entries = []
    for name, info in header.items():
        field = f"{where}: tensor '{name}'"
        _check_name(name, where)
        if not isinstance(info, dict):
            raise SafetensorsError(f"{field} is not an object")
        keys = set(info)
        if keys != {"dtype", "shape", "data_offsets"}:
            missing = sorted({"dtype", "shape", "data_offsets"} - keys)
            unknown = sorted(keys - {"dtype", "shape", "data_offsets"})
            raise SafetensorsError(f"{field}: missing fields {missing}, unknown fields {unknown}")
        dtype = info["dtype"]
        if dtype not in _DTYPES:
            raise SafetensorsError(f"{field}: dtype {dtype!r} is not supported "
                                   f"(expected one of {sorted(_DTYPES)})")
        shape = info["shape"]
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise SafetensorsError(f"{field}: shape {shape!r} is not a list of integers >= 0")
        offsets = info["data_offsets"]
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(_is_int(o) for o in offsets)):
            raise SafetensorsError(f"{field}: data_offsets {offsets!r} is not [begin, end]")
        begin, end = offsets
        if not 0 <= begin <= end <= data_size:
            raise SafetensorsError(f"{field}: data_offsets [{begin}, {end}] outside the "
                                   f"data buffer of {data_size} bytes")
        expected = math.prod(shape) * _DTYPES[dtype].itemsize
        if end - begin != expected:
            raise SafetensorsError(f"{field}: data_offsets [{begin}, {end}] hold {end - begin} "
                                   f"bytes, shape {shape} {dtype} needs {expected}")
        entries.append((begin, end, name, dtype, tuple(shape)))

    # Packed back to back, covering the buffer exactly (sorting by (begin,
    # end) puts empty tensors before a non-empty one at the same offset).
    entries.sort()
    cursor = 0
    for begin, end, name, _, _ in entries:
        if begin != cursor:
            what = "overlaps the previous tensor" if begin < cursor else "leaves a hole before it"
            raise SafetensorsError(f"{where}: tensor '{name}' at offset {begin} {what} "
                                   f"(previous data ends at {cursor})")
        cursor = end
    if cursor != data_size:
        raise SafetensorsError(f"{where}: tensors cover {cursor} bytes of a data buffer of "
                               f"{data_size} bytes (trailing bytes)")
    return entries, metadata, data_start


def _read_raw_header(f, file_size, where):
    if file_size < HEADER_LEN_BYTES:
        raise SafetensorsError(f"{where}: file of {file_size} bytes is shorter than the "
                               f"{HEADER_LEN_BYTES}-byte header length")
    header_len = int.from_bytes(f.read(HEADER_LEN_BYTES), "little")
    if header_len > MAX_HEADER_BYTES:
        raise SafetensorsError(f"{where}: header length {header_len} exceeds "
                               f"{MAX_HEADER_BYTES} bytes")
    if header_len > file_size - HEADER_LEN_BYTES:
        raise SafetensorsError(f"{where}: header length {header_len} runs past the end of "
                               f"the file ({file_size} bytes)")
    raw = f.read(header_len)
    if len(raw) != header_len:
        raise SafetensorsError(f"{where}: short read of the header")
    return raw


def read_header(path):
    """Reads and validates only the header of `path`.

    Returns (dict name -> (dtype name, shape tuple), metadata dict)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        raw = _read_raw_header(f, file_size, path)
    entries, metadata, _ = _parse_header(raw, file_size, path)
    return {name: (dtype, shape) for _, _, name, dtype, shape in entries}, metadata


def load(path):
    """Reads `path`, validating every field (see the module comment).

    Returns (dict name -> numpy array, metadata dict str -> str).  The arrays
    are writable views into one buffer holding the file's data, in native
    byte order.  Raises SafetensorsError naming the file and field at fault,
    OSError when the file cannot be read."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        raw = _read_raw_header(f, file_size, path)
        entries, metadata, data_start = _parse_header(raw, file_size, path)
        data = bytearray(file_size - data_start)
        got = f.readinto(data)
        if got != len(data):
            raise SafetensorsError(f"{path}: short read of the data ({got} of {len(data)} bytes)")
    tensors = {}
    for begin, end, name, dtype, shape in entries:
        np_dtype = _DTYPES[dtype]
        array = np.frombuffer(data, dtype=np_dtype, count=(end - begin) // np_dtype.itemsize,
                              offset=begin).reshape(shape)
        if not np_dtype.isnative:
            array = array.astype(np_dtype.newbyteorder("="))
        tensors[name] = array
    return tensors, metadata
