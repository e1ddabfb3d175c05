using Microsoft.Extensions.Options;

namespace VixAspire.TestSupport;

/// <summary>An options monitor over one fixed value, for unit tests of classes that read options.</summary>
public sealed class FixedOptionsMonitor<T>(T value) : IOptionsMonitor<T>
{
    public T CurrentValue => value;

    public T Get(string? name) => value;

    public IDisposable? OnChange(Action<T, string?> listener) => null;
}
