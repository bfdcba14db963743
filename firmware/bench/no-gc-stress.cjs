/**
 * Preload for the VM benchmarks (`node -r ./bench/no-gc-stress.cjs <devs cli> run FILE --test ...`): `devs run --test`
 * always turns on the runtime's GC stress mode (a full collection at every allocation, to find GC bugs in tests),
 * which makes every call and allocation cost about 20 us. The simulator's VM (`devs vm`, what the gateway runs in)
 * does not. This keeps the switch off, so a benchmark measures the VM the gateway runs in. Wraps the WebAssembly
 * instance's exports: the CLI reads them by name at each call.
 */
const instantiate = WebAssembly.instantiate;
WebAssembly.instantiate = async function (...args) {
    const r = await instantiate.apply(this, args);
    const instance = r.instance ?? r;
    if (!instance.exports || typeof instance.exports.jd_em_devs_enable_gc_stress !== "function") return r;
    const exports = { ...instance.exports, jd_em_devs_enable_gc_stress: () => 0 };
    const wrapped = Object.create(WebAssembly.Instance.prototype, { exports: { value: exports } });
    return r.instance ? { module: r.module, instance: wrapped } : wrapped;
};
