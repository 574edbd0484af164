"""The exact key sets of NPM's objects, as the contract (shared/reference/npm-api.md) lists
them: strict clients reject extra keys, so tests compare with these."""

USER_KEYS = frozenset(
    {
        "id",
        "created_on",
        "modified_on",
        "is_disabled",
        "email",
        "name",
        "nickname",
        "avatar",
        "roles",
    }
)
CERTIFICATE_KEYS = frozenset(
    {
        "id",
        "created_on",
        "modified_on",
        "owner_user_id",
        "provider",
        "nice_name",
        "domain_names",
        "expires_on",
        "meta",
    }
)
