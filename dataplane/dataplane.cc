#include "dataplane/dataplane.hh"

#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_pdump.h>
#include <spdlog/spdlog.h>

namespace ringsock::dataplane {

PdumpServer::PdumpServer()
{
    if (rte_pdump_init() == 0)
        initialised_ = true;
    else
        spdlog::warn("pdump unavailable ({}): dpdk-dumpcap cannot capture this process", rte_strerror(rte_errno));
}

PdumpServer::~PdumpServer()
{
    if (initialised_) rte_pdump_uninit();
}

Dataplane::Dataplane(const Profile& profile, std::string program_name, EngineLcores lcores)
    : profile_(profile), eal_(profile_, std::move(program_name))
{
    std::vector<int> sockets{Port::socket_of(profile_.port)};
    unsigned lcore = 0;
    RTE_LCORE_FOREACH(lcore)
    {
        if (lcores == EngineLcores::workers && lcore == rte_get_main_lcore()) continue;
        engines_.push_back(std::make_unique<Engine>(lcore, profile_.engine));
        sockets.push_back(static_cast<int>(rte_lcore_to_socket_id(lcore)));
    }
    if (engines_.empty())
        throw EalError("eal.lcores = \"" + profile_.eal.lcores +
                       "\": expected at least two lcores: the main one is the application's, engines run on the others");
    mempools_.emplace("ringsock_mbufs", profile_.mempool, sockets);

    const auto engine_of_queue = [this](uint16_t queue) -> Engine& { return *engines_[queue % engines_.size()]; };
    port_.emplace(profile_.port, [&](uint16_t queue) -> const Mempool& {
        return mempools_->for_socket(static_cast<int>(rte_lcore_to_socket_id(engine_of_queue(queue).lcore())));
    });

    for (uint16_t q = 0; q < port_->rx_queues(); ++q)
        engine_of_queue(q).add_rx_queue({port_->id(), q});
    for (uint16_t k = 0; k < engines_.size() && k < port_->tx_queues(); ++k)
        engines_[k]->add_tx_queue(port_->id(), k);
    if (engines_.size() > port_->rx_queues())
        spdlog::warn("{} engines but port {} has {} RX queue(s): {} engine(s) will idle", engines_.size(),
                     port_->name(), port_->rx_queues(), engines_.size() - port_->rx_queues());
    if (engines_.size() > port_->tx_queues())
        spdlog::warn("{} engines but port {} has {} TX queue(s): engines beyond them cannot transmit", engines_.size(),
                     port_->name(), port_->tx_queues());

    telemetry_.emplace([this] { return snapshot(); });
}

Dataplane::~Dataplane()
{
    request_stop();
    rte_eal_mp_wait_lcore();
    // Members go in reverse: telemetry, port (its RX rings return their
    // mbufs), mempools, engines, pdump, then EAL last.
    telemetry_.reset();
    if (const unsigned leaked = close_port(); leaked != 0) spdlog::warn("{} mbufs still taken at shutdown", leaked);
    mempools_.reset();
}

unsigned Dataplane::close_port()
{
    port_.reset();
    return mempools_ ? mempools_->in_use() : 0;
}

int Dataplane::engine_main(void* arg)
{
    const auto* launch = static_cast<const Launch*>(arg);
    launch->engine->run(*launch->stop);
    return 0;
}

void Dataplane::run()
{
    const unsigned main_lcore = rte_get_main_lcore();
    launches_.clear();
    launches_.reserve(engines_.size());
    Launch* on_main = nullptr;
    for (auto& engine : engines_) {
        launches_.push_back({engine.get(), &stop_});
        if (engine->lcore() == main_lcore) {
            on_main = &launches_.back();
            continue;
        }
        if (int rc = rte_eal_remote_launch(engine_main, &launches_.back(), engine->lcore()); rc != 0)
            spdlog::error("cannot launch the engine on lcore {}: {}", engine->lcore(), rte_strerror(-rc));
    }
    if (on_main != nullptr) engine_main(on_main);
    rte_eal_mp_wait_lcore();
}

DataplaneSnapshot Dataplane::snapshot() const
{
    DataplaneSnapshot s;
    for (const auto& engine : engines_) {
        s.engines.push_back(EngineSnapshot::of(engine->lcore(), engine->counters()));
        for (std::size_t i = 0; i < engine->rx_queues().size(); ++i) {
            const auto& ref = engine->rx_queues()[i];
            const auto& c = engine->queue_counters(i);
            s.queues.push_back(
                {ref.port, ref.queue, engine->lcore(), c.rx_packets.get(), c.rx_bytes.get(), c.rx_bursts.get()});
        }
    }
    if (port_) s.port = port_->stats();
    if (mempools_) {
        for (const auto& pool : mempools_->pools())
            s.mbufs_capacity += pool.capacity();
        s.mbufs_in_use = mempools_->in_use();
    }
    return s;
}

} // namespace ringsock::dataplane
