"""A conversation as a tree of messages: every edit of an earlier message is a new branch.

Each message points at the one it answers (``parent``; ``None`` for a first
message). The messages from a first one down to a *leaf* (a message nothing
answers yet) are one version of the conversation: a branch. This is the shape
the gateway keeps in ``/api/conversations`` (``parent_message_id``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ROLE_LABELS = {"user": "You", "assistant": "Assistant", "system": "System"}


@dataclass
class Node:
    """One message in the conversation tree."""

    id: str
    parent: str | None
    role: str
    content: str
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    meta: str = ""
    children: list[str] = field(default_factory=list)


class ConversationTree:
    """The messages of one conversation, and the leaf of the branch being shown."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.leaf: str | None = None

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def clear(self) -> None:
        self.nodes.clear()
        self.leaf = None

    def add(self, node: Node) -> None:
        """Add ``node`` under its parent (a message already in the tree, or none)."""
        self.nodes[node.id] = node
        if node.parent is not None and node.parent in self.nodes:
            self.nodes[node.parent].children.append(node.id)

    @classmethod
    def from_messages(cls, messages: Iterable[Mapping[str, Any]]) -> ConversationTree:
        """A tree from the gateway's messages (oldest first)."""
        tree = cls()
        for m in messages:
            tree.add(Node(
                m["id"], m["parent_message_id"], m["role"], m["content"] or "", m.get("model"),
                m.get("prompt_tokens"), m.get("completion_tokens"), m.get("cost_usd"),
            ))
        return tree

    def roots(self) -> list[str]:
        return [n.id for n in self.nodes.values() if n.parent not in self.nodes]

    def leaves(self) -> list[str]:
        return [n.id for n in self.nodes.values() if not n.children]

    def path_to(self, leaf: str | None) -> list[Node]:
        """The messages from the first one down to ``leaf``."""
        path: list[Node] = []
        while leaf is not None and leaf in self.nodes:
            path.append(self.nodes[leaf])
            leaf = self.nodes[leaf].parent
        return path[::-1]

    def path(self) -> list[Node]:
        """The branch being shown."""
        return self.path_to(self.leaf)

    def version(self, node: Node) -> tuple[int, int]:
        """``(n, of)``: this message is version n of the ``of`` answers to its parent."""
        group = self.nodes[node.parent].children if node.parent in self.nodes else self.roots()
        return (group.index(node.id) + 1 if node.id in group else 1, len(group))

    def text(self) -> str:
        """The tree as indented text; ``*`` marks the branch being shown."""
        on_path = {n.id for n in self.path()}
        lines: list[str] = []

        def walk(node_id: str, depth: int) -> None:
            node = self.nodes[node_id]
            mark = "*" if node_id in on_path else " "
            label = ROLE_LABELS.get(node.role, node.role)
            lines.append(f"{mark} {'  ' * depth}{label}: {short(node.content)}")
            for child in node.children:
                walk(child, depth + 1)

        for root in self.roots():
            walk(root, 0)
        return "\n".join(lines)


def short(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
