"""Start-up checks of the call integration's settings."""

from django.conf import settings
from django.core.checks import Error, register

from calls.spaces import space_secret_entry


@register()
def check_webhook_space_secrets(app_configs, **kwargs) -> list[Error]:
    """ELEVENLABS_WEBHOOK_SPACE_SECRETS entries are `<space slug>:<secret>`: one that is not would be ignored, and
    its workspace's post-call webhooks refused, without a word."""
    return [
        Error(
            f"ELEVENLABS_WEBHOOK_SPACE_SECRETS entry {position + 1} is not '<space slug>:<secret>'.",
            hint="Separate the space's slug and the workspace's webhook secret with a colon.",
            id="calls.E001",
        )
        for position, entry in enumerate(settings.ELEVENLABS_WEBHOOK_SPACE_SECRETS)
        if space_secret_entry(entry) is None
    ]
