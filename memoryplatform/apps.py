from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class MemoryPlatformConfig(AppConfig):
    name = "memoryplatform"
    verbose_name = "Memory platform"


class PlatformAdminConfig(AdminConfig):
    default_site = "memoryplatform.admin_site.PlatformAdminSite"
