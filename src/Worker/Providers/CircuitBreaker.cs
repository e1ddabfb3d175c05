using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace VixAspire.Worker.Providers;

public enum CircuitState
{
    /// <summary>Requests flow; consecutive failures are counted.</summary>
    Closed,

    /// <summary>The upstream is skipped without being called until the break duration has passed.</summary>
    Open,

    /// <summary>The break is over: one trial request may go through; its outcome closes or reopens the circuit.</summary>
    HalfOpen,
}

/// <summary>
/// A consecutive-failure circuit breaker for one upstream. Time comes from a <see cref="TimeProvider"/>, and the
/// break is measured lazily when someone asks, so the breaker owns no timers.
/// </summary>
public sealed class CircuitBreaker(int failureThreshold, TimeSpan breakDuration, TimeProvider time)
{
    private readonly Lock _lock = new();
    private CircuitState _state = CircuitState.Closed;
    private int _failures;
    private long _openedAt;
    private bool _trialInFlight;

    /// <summary>The state as a caller would find it now: an open circuit whose break is over reads as half-open.</summary>
    public CircuitState State
    {
        get
        {
            lock (_lock)
            {
                return _state == CircuitState.Open && BreakIsOver() ? CircuitState.HalfOpen : _state;
            }
        }
    }

    /// <summary>True when a request may be sent now. In half-open state only the first caller gets through.</summary>
    public bool TryAcquire()
    {
        lock (_lock)
        {
            switch (_state)
            {
                case CircuitState.Closed:
                    return true;
                case CircuitState.Open when !BreakIsOver():
                    return false;
                case CircuitState.Open:
                    _state = CircuitState.HalfOpen;
                    _trialInFlight = true;
                    return true;
                default:
                    if (_trialInFlight)
                    {
                        return false;
                    }

                    _trialInFlight = true;
                    return true;
            }
        }
    }

    /// <summary>Records an upstream that answered; returns true when this closed an open or half-open circuit.</summary>
    public bool RecordSuccess()
    {
        lock (_lock)
        {
            var wasBroken = _state != CircuitState.Closed;
            _state = CircuitState.Closed;
            _failures = 0;
            _trialInFlight = false;
            return wasBroken;
        }
    }

    /// <summary>Records a failure; returns true when this opened the circuit.</summary>
    public bool RecordFailure()
    {
        lock (_lock)
        {
            switch (_state)
            {
                case CircuitState.HalfOpen:
                    Open();
                    return true;
                case CircuitState.Closed when ++_failures >= failureThreshold:
                    Open();
                    return true;
                default:
                    // Open: a request sent before the circuit opened has failed too; the break is not extended.
                    return false;
            }
        }
    }

    /// <summary>An acquired attempt ended with no verdict on the upstream (cancelled): let another trial through.</summary>
    public void Release()
    {
        lock (_lock)
        {
            _trialInFlight = false;
        }
    }

    private void Open()
    {
        _state = CircuitState.Open;
        _openedAt = time.GetTimestamp();
        _trialInFlight = false;
    }

    private bool BreakIsOver() => time.GetElapsedTime(_openedAt) >= breakDuration;
}

/// <summary>One <see cref="CircuitBreaker"/> per upstream provider name, shared by all of a worker's generations.</summary>
internal sealed class CircuitBreakers(IOptionsMonitor<ProviderResilienceOptions> options, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, CircuitBreaker> _breakers = new(StringComparer.Ordinal);

    public CircuitBreaker For(string provider) => _breakers.GetOrAdd(provider, _ =>
    {
        var settings = options.CurrentValue;
        return new CircuitBreaker(settings.BreakerFailureThreshold, settings.BreakerBreakDuration, time);
    });
}
