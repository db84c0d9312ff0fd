"""The site's GraphQL API, with GitLab's names (research/geo-api-ui.md §1)."""
