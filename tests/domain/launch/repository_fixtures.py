"""Providers, rules and specs the repository launch tests share."""

from __future__ import annotations

from eohub.domain.launch.repository import RepoRules
from eohub.domain.repos.policy import RepoPolicy
from eohub.domain.repos.specs import RepoProviders, RepoSpec

PROVIDERS = RepoProviders.default()
# GitHub Enterprise under a path prefix, and a self-hosted GitLab.
ENTERPRISE = RepoProviders.default(
    github_url="https://ghe.example.org/github/", gitlab_url="https://git.example.org"
)
COMMIT = "0123456789abcdef0123456789abcdef01234567"
PREFIX = "registry.example.org/binder/r2d-"
RULES = RepoRules(PROVIDERS, RepoPolicy(), image_prefix=PREFIX)
NO_BUILDER = RepoRules(PROVIDERS, RepoPolicy())

GH = RepoSpec("gh", "https://github.com/org/repo", "org/repo", "main")
GL = RepoSpec("gl", "https://gitlab.com/group/sub/project.git", "group/sub/project", "main")
GIT = RepoSpec("git", "https://example.org/a/b.git", "https://example.org/a/b.git", "main")


def spec(provider: str, repo: str, ref: str = "HEAD") -> RepoSpec:
    return PROVIDERS.from_fields(provider, repo, ref)
