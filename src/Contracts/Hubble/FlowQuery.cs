using Mesh.Contracts.Hubble.Flows;
using Mesh.Contracts.Hubble.Observers;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.Contracts.Hubble;

/// <summary>
/// What one GetFlows request asks of the flows: its filters, its time window and how many. Refuses a request
/// Hubble refuses (first with follow) and filters Mesh cannot honour, with a message naming the field.
/// </summary>
public sealed class FlowQuery
{
    private readonly Func<FlowMessage, bool> _filters;
    private readonly DateTimeOffset? _since, _until;
    private readonly ulong _number;
    private readonly bool _first;

    public DateTimeOffset? Since => _since;
    public DateTimeOffset? Until => _until;
    /// <summary>How many flows (0: all); with <see cref="First"/> the earliest, else the latest.</summary>
    public ulong Number => _number;
    public bool First => _first;
    /// <summary>The filters <see cref="Matches"/> applies: a store may narrow what it reads by them, and must still check each flow.</summary>
    public IReadOnlyList<FlowFilter> Whitelist { get; }
    public IReadOnlyList<FlowFilter> Blacklist { get; }

    public FlowQuery(GetFlowsRequest request)
    {
        if (request.First && request.Follow) throw new FlowFilterException("first: the earliest flows and follow cannot be combined");
        _filters = FlowFilters.Compile(request.Whitelist, request.Blacklist);
        (Whitelist, Blacklist) = ([.. request.Whitelist], [.. request.Blacklist]);
        _since = request.Since?.ToDateTimeOffset();
        _until = request.Until?.ToDateTimeOffset();
        if (_since > _until) throw new FlowFilterException($"since: {_since:O} is after until {_until:O}");
        (_number, _first, Follow) = (request.Number, request.First, request.Follow);
    }

    public bool Follow { get; }

    /// <summary>
    /// As Hubble's observer: following with neither a number nor a since starts at the newest flow; what is held or
    /// stored from before the call is not sent.
    /// </summary>
    public bool FollowsFromNow => Follow && _number == 0 && _since is null;

    /// <summary>Whether a flow is in the window and passes the filters.</summary>
    public bool Matches(FlowMessage flow)
    {
        var time = flow.Time?.ToDateTimeOffset();
        return (_since is null || time >= _since) && (_until is null || time <= _until) && _filters(flow);
    }

    /// <summary>A followed flow after <c>until</c> ends the call: flows arrive in time order.</summary>
    public bool IsPastWindow(FlowMessage flow) => _until is { } until && flow.Time?.ToDateTimeOffset() > until;

    /// <summary>The held flows the request selects, oldest first: all of them, or the last (or with first, the
    /// earliest) <c>number</c> of those that match.</summary>
    public IReadOnlyList<FlowMessage> Select(IReadOnlyList<FlowMessage> held)
    {
        var matching = held.Where(Matches);
        if (_number == 0) return [.. matching];
        var count = (int)Math.Min(_number, int.MaxValue);
        return _first ? [.. matching.Take(count)] : [.. matching.TakeLast(count)];
    }
}
