extern "C" int hetcache_test_dependency() { return 0; }
