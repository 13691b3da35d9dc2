"""Reading the files ``castore import`` is given: JSON or YAML, within bounds.

An import file comes from outside the store (a cassette from another project, an old
fixture file), so it is read the way store files are: a regular file under a size cap,
JSON without NaN or giant integers. YAML adds aliases: ten nested anchors that each
repeat the previous one ten times (a "billion laughs") expand to 10^10 nodes once the
value is walked, and an anchor that contains itself never ends. The node graph is
therefore checked before any Python object is built: its size with every alias expanded
must stay under :data:`MAX_EXPANDED_NODES`, and no alias may refer to a node it sits in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from castore._storage.json_documents import parse_document
from castore._storage.safe_files import FileRefused, read_user_file
from castore.errors import ImportFormatError, IndexFormatError

#: Largest import file read (a cassette of many large LLM responses is tens of MB).
MAX_IMPORT_BYTES: Final = 512 * 2**20
#: Most nodes a YAML file may expand to once aliases are followed. Real cassettes hold
#: about 40 nodes per interaction, so this is 100,000 interactions in one file.
MAX_EXPANDED_NODES: Final = 4_000_000


def load_import_file(path: Path) -> Any:
    """The document in ``path``; every problem is an :class:`ImportFormatError`."""
    try:
        raw = read_user_file(path, MAX_IMPORT_BYTES)
    except FileNotFoundError:
        raise ImportFormatError("does not exist") from None
    except FileRefused as error:
        raise ImportFormatError(error.reason) from None
    if path.suffix == ".json":
        try:
            return parse_document(raw, path)
        except IndexFormatError as error:
            raise ImportFormatError(f"cannot be parsed ({error.detail})") from None
    return _load_yaml(raw)


def _load_yaml(raw: bytes) -> Any:
    try:
        import yaml  # noqa: PLC0415 - optional dependency (castore[vcr]), for YAML only
    except ImportError:
        raise ImportFormatError(
            "reading YAML cassettes needs PyYAML: `uv add 'castore[vcr]'` or `pip install pyyaml`"
        ) from None
    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_class(raw)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, yaml.MappingNode, yaml.SequenceNode)
        return loader.construct_document(node)
    except ImportFormatError:
        raise
    except Exception as error:  # PyYAML raises many types for broken files
        raise ImportFormatError(f"cannot be parsed ({type(error).__name__}: {error})") from None
    finally:
        loader.dispose()


def _check_expansion(root: Any, mapping: Any, sequence: Any) -> None:
    """Refuse a node graph that is cyclic or expands past :data:`MAX_EXPANDED_NODES`.

    Iterative, so a deep document cannot exhaust the stack; each node's expanded size is
    computed once (aliases make the graph a DAG whose expansion is exponential).
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        ident = id(node)
        children = _children(node, mapping, sequence)
        if children_done:
            open_nodes.discard(ident)
            total = 1 + sum(sizes[id(child)] for child in children)
            if total > MAX_EXPANDED_NODES:
                raise ImportFormatError(
                    f"its YAML aliases expand to more than {MAX_EXPANDED_NODES:,} nodes "
                    "(a 'billion laughs' file?); castore refuses to read it"
                )
            sizes[ident] = total
            continue
        if ident in sizes:
            continue
        if ident in open_nodes:
            raise ImportFormatError(
                f"a YAML anchor refers to itself (line {node.start_mark.line + 1}), "
                "so the document never ends"
            )
        open_nodes.add(ident)
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                raise ImportFormatError(
                    f"a YAML anchor refers to itself (line {child.start_mark.line + 1}), "
                    "so the document never ends"
                )
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: Any, mapping: Any, sequence: Any) -> list[Any]:
    if isinstance(node, mapping):
        return [part for pair in node.value for part in pair]
    if isinstance(node, sequence):
        return list(node.value)
    return []
