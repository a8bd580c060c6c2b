#include "audit_backend.h"
#include <stdexcept>
#include <string>
namespace {
audit_status fail(audit_sink *e, const std::string &m) { e->put(e, m.data(), m.size()); return AUDIT_FATAL; }
audit_status cpp_open(const char *, size_t, void **, audit_sink *e) {
    try {
        throw std::runtime_error("no store");
    } catch (const std::exception &x) {
        return fail(e, std::string("caught std::runtime_error: ") + x.what());
    } catch (...) {
        return fail(e, "unknown exception");
    }
}
audit_status cpp_write(void *, const audit_record *, size_t, size_t, audit_sink *) { return AUDIT_OK; }
audit_status cpp_call(void *, audit_sink *) { return AUDIT_OK; }
const audit_backend table = {
    sizeof(audit_backend), AUDIT_BACKEND_ABI_VERSION,
    AUDIT_STR("cpp-fixture"), AUDIT_STR("0.0.1"), AUDIT_STR("C++ fixture"), AUDIT_STR(""),
    cpp_open, cpp_write, cpp_call, nullptr, cpp_call, nullptr, nullptr, nullptr, nullptr, nullptr
};
}
AUDIT_BACKEND_DEFINE_ENTRY(table)
