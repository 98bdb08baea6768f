"""The memory engine in the admin: memories (with their links), links, and heavy users' vector indexes.

Memories are added and edited through the same services as the API (memories.services): a new memory is
embedded, deduplicated and linked; an edited text is re-embedded. Provider failures and duplicates are form
errors, not 500s.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from embeddings.errors import EmbeddingError
from embeddings.generation import generate_embedding
from memories.models import Memory, MemoryLink, Space, UserVectorIndex, text_fingerprint
from memories.owners import Owner
from memories.services import (
    MemoryInputError,
    NewMemory,
    clean_text,
    create_memory,
    delete_memory,
    forget_user,
    owner_of,
    update_memory_fields,
)
from memories.spaces import may_see, restrict_to_visible, visible_space_ids

ADD_FIELDS = ["space", "user_id", "text", "kind", "sector", "salience", "occurred_at", "metadata"]
CHANGE_FIELDS = ["text", "sector", "salience", "metadata"]


class MemoryForm(forms.ModelForm):
    """Checks what the services would refuse, and embeds the text (through the cache) while the form can still
    show an error: the save that follows finds the vector cached."""

    class Meta:
        model = Memory
        fields = ADD_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "sector" in self.fields and self.instance.pk is None:
            self.fields["sector"].required = False
            self.fields["sector"].help_text = "Leave empty to guess it from the text."
            self.fields["sector"].choices = [("", "(guess from the text)"), *Memory._meta.get_field("sector").choices]

    def clean(self):
        data = super().clean()
        try:
            if self.instance.pk is None and data.get("space") is not None:
                owner_of(data["space"].pk, data.get("user_id"))
            if "text" in data:
                data["text"] = clean_text(data["text"])
                self.check_not_repeating(data["text"])
                generate_embedding(data["text"])
        except MemoryInputError as error:
            raise forms.ValidationError(str(error)) from None
        except EmbeddingError as error:
            raise forms.ValidationError(f"The text could not be embedded now ({error}); try again later.") from None
        return data

    def check_not_repeating(self, text: str) -> None:
        """An edit may not make a current memory say exactly what another current memory of the user says."""
        if self.instance.pk is None or self.instance.superseded_by_id is not None:
            return  # a new memory that repeats one reinforces it instead (the save says so)
        twin = (
            Memory.objects.for_user(self.instance.owner)
            .current()
            .filter(text_hash=text_fingerprint(text))
            .exclude(pk=self.instance.pk)
            .first()
        )
        if twin is not None:
            raise MemoryInputError(f"memory {twin.pk} of this user already says this; delete one of the two instead")


class SpaceScopedAdmin(admin.ModelAdmin):
    """A list of rows that belong to spaces: staff see only the spaces they may see (memories.spaces), and the
    space is a filter once there is more than one."""

    def get_queryset(self, request):
        return restrict_to_visible(super().get_queryset(request), request.user)

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        allowed = visible_space_ids(request.user)
        if allowed is None or len(allowed) > 1:
            filters.insert(0, ("space", admin.RelatedOnlyFieldListFilter))
        return filters

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "space":
            kwargs["queryset"] = restrict_to_visible(Space.objects.all(), request.user, field="pk")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if obj.space_id is not None and not may_see(request.user, obj.space_id):
            raise PermissionDenied("not a memory space you may see")
        super().save_model(request, obj, form, change)

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) and (obj is None or may_see(request.user, obj.space_id))

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or may_see(request.user, obj.space_id))

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and (obj is None or may_see(request.user, obj.space_id))


def sees_every_space(request) -> bool:
    return visible_space_ids(request.user) is None


@admin.register(Space)
class SpaceAdmin(admin.ModelAdmin):
    """Spaces themselves: superusers manage them; staff see the spaces they belong to. Only people who see every
    space choose a space's staff: the choice lists every staff account, and staff limited to spaces must neither
    see the others' names nor let anyone into a space."""

    list_display = ["name", "slug", "accepts_unregistered_agents", "extraction_model", "payload_retention_days"]
    search_fields = ["name", "slug"]
    filter_horizontal = ["staff"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at"]

    def get_queryset(self, request):
        return restrict_to_visible(super().get_queryset(request), request.user, field="pk")

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and (obj is None or not obj.is_default)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields if sees_every_space(request) else [*fields, "staff"]

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "staff":
            kwargs["queryset"] = db_field.related_model.objects.filter(is_staff=True)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class SupersededFilter(admin.SimpleListFilter):
    title = "superseded"
    parameter_name = "superseded"

    def lookups(self, request, model_admin):
        return [("no", "current"), ("yes", "superseded (history)")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(superseded_by__isnull=True)
        if self.value() == "yes":
            return queryset.filter(superseded_by__isnull=False)
        return queryset


@admin.register(Memory)
class MemoryAdmin(SpaceScopedAdmin):
    list_display = ["id", "space", "user_id", "kind", "short_text", "sector", "salience", "access_count", "occurred_at"]
    list_filter = ["kind", "sector", SupersededFilter, "occurred_at"]
    search_fields = ["text", "=user_id"]
    form = MemoryForm
    readonly_fields = [
        "space",
        "user_id",
        "kind",
        "extra_sectors",
        "occurred_at",
        "embedding_model",
        "created_at",
        "last_accessed_at",
        "access_count",
        "source_conversation_id",
        "source_turns",
        "superseded_by",
        "valid_until",
        "links",
    ]
    actions = ["forget_users"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("embedding").select_related("space")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ADD_FIELDS
        return [*CHANGE_FIELDS, *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def save_form(self, request, form, change):
        """The write, through the services; returns the memory the admin then logs and redirects to."""
        data = form.cleaned_data
        if change:
            changes = {name: data[name] for name in form.changed_data if name in CHANGE_FIELDS}
            return update_memory_fields(form.instance, **changes)
        new = NewMemory(
            text=data["text"],
            sector=data.get("sector") or None,
            salience=data["salience"],
            kind=data["kind"],
            occurred_at=data.get("occurred_at"),
            metadata=data.get("metadata") or {},
        )
        stored = create_memory(Owner(data["space"].pk, data["user_id"]), new)
        if not stored.created:
            self.message_user(
                request,
                f"This repeats memory {stored.memory.pk} of {stored.memory.user_id}, which was reinforced instead.",
                messages.WARNING,
            )
        return stored.memory

    def save_model(self, request, obj, form, change):
        pass  # save_form wrote it

    def delete_model(self, request, obj):
        delete_memory(obj)

    def delete_queryset(self, request, queryset):
        for memory in queryset:
            delete_memory(memory)

    def save_related(self, request, form, formsets, change):
        pass  # no many-to-many fields, no inlines

    @admin.display(description="text")
    def short_text(self, memory: Memory) -> str:
        return memory.text if len(memory.text) <= 80 else memory.text[:79] + "…"

    @admin.display(description="links (both directions, same user only)")
    def links(self, memory: Memory) -> str:
        rows = (
            MemoryLink.objects.filter(
                Q(from_memory=memory) | Q(to_memory=memory), space_id=memory.space_id, user_id=memory.user_id
            )
            .select_related("from_memory", "to_memory")
            .order_by("-weight")
        )
        items = []
        for link in rows:
            other = link.to_memory if link.from_memory_id == memory.pk else link.from_memory
            items.append((f"../../{other.pk}/change/", other.text[:80], link.reason, f"{link.weight:.2f}"))
        if not items:
            return "none"
        return format_html("<ul>{}</ul>", format_html_join("", '<li><a href="{}">{}</a> ({}, {})</li>', items))

    @admin.action(
        description="Forget the users of the selected memories (everything about them)", permissions=["delete"]
    )
    def forget_users(self, request, queryset):
        users = sorted({Owner(*pair) for pair in queryset.values_list("space_id", "user_id")}, key=str)
        if request.POST.get("confirmed") == "yes":
            for owner in users:
                counts = forget_user(owner)
                summary = ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in counts.items())
                self.message_user(request, f"Forgot {owner}: {summary}.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Forget these users?",
            "users": [str(owner) for owner in users],
            "memory_counts": {str(owner): Memory.objects.for_user(owner).count() for owner in users},
            "queryset": queryset,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/memories/forget_confirm.html", context)


@admin.register(MemoryLink)
class MemoryLinkAdmin(SpaceScopedAdmin):
    """Links are the engine's; staff who see every space may add or edit one (the raw id fields would otherwise
    name memories of spaces the viewer may not see)."""

    list_display = ["from_memory", "to_memory", "weight", "reason", "space", "user_id"]
    list_filter = ["reason"]
    search_fields = ["=user_id"]
    raw_id_fields = ["from_memory", "to_memory"]

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and sees_every_space(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and sees_every_space(request)


@admin.register(UserVectorIndex)
class UserVectorIndexAdmin(SpaceScopedAdmin):
    """Read-only: indexes are built and dropped by the worker and `manage.py sync_user_indexes`."""

    list_display = ["space", "user_id", "status", "memories_at_build", "build_seconds", "ready_at", "index_name"]
    list_filter = ["status"]
    search_fields = ["=user_id"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
