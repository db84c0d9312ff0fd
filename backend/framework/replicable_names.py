"""GitLab's names for a replicable type, from its GraphQL name: the names a
type this console does not declare gets when a site or a tracking database
shows it (`LfsObject`: "LFS Object", "LFS Objects", status fields
`lfs_objects_…`)."""
from __future__ import annotations

import re

from backend.framework.replicator import ReplicableType

# How GitLab writes the words of its type names that are not plain words.
ACRONYMS = {"lfs": "LFS", "ci": "CI", "ai": "AI", "nuget": "NuGet"}


def snake(name: str) -> str:
    """"PackageFile" -> "package_file"."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def camel(name: str) -> str:
    """"package_file" -> "PackageFile"."""
    return "".join(part.title() for part in name.split("_"))


def plural(word: str) -> str:
    lower = word.lower()
    if re.search(r"[^aeiou]y$", lower):
        return word[:-1] + "ies"
    if re.search(r"(s|x|ch|sh)$", lower):
        return word + "es"
    return word + "s"


def gitlab_type(graphql_name: str, registry_fk: str) -> ReplicableType:
    """A type named as GitLab names it; `registry_fk` is its registries'
    model id column."""
    name = snake(graphql_name)
    words = [ACRONYMS.get(part, part.title()) for part in name.split("_")]
    plural_words = words[:-1] + [plural(words[-1])]
    return ReplicableType(name, "_".join(w.lower() for w in plural_words), " ".join(words),
                          " ".join(plural_words), registry_fk, graphql_name)
