/*
 * A plugin that uses libusdt while the dynamic loader runs it
 * (t/71_lifetime.t, with lifetime_loader_host.c). Its constructor and
 * its destructor each create a provider, add a probe, enable it and free
 * it: they run inside dlopen and dlclose, with the loader's lock held.
 */
#include "usdt.h"

static void
plugin_cycle(const char *probe)
{
        usdt_provider_t *p = usdt_create_provider("lt_plugin", "plugin");
        usdt_probedef_t *pd = usdt_create_probe("fn", probe, 0, NULL);

        if (p != NULL && pd != NULL && usdt_provider_add_probe(p, pd) == 0)
                usdt_provider_enable(p);
        usdt_probe_release(pd);
        usdt_provider_free(p);
}

__attribute__((constructor)) static void
plugin_load(void)
{
        plugin_cycle("loaded");
}

__attribute__((destructor)) static void
plugin_unload(void)
{
        plugin_cycle("unloaded");
}
