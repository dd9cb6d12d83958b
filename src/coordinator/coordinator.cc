// The coordinator module: see group_coordinator.h and producer_id_manager.h.
namespace holdfast::coordinator {}
