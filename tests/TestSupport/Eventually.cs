namespace VixAspire.TestSupport;

/// <summary>Waits for a condition that another process makes true, with a deadline instead of a fixed sleep.</summary>
public static class Eventually
{
    /// <summary>Waits, polling every 50 ms, until <paramref name="condition"/> holds; fails the test after <paramref name="bound"/>.</summary>
    public static Task UntilAsync(Func<Task<bool>> condition, TimeSpan bound, string what, CancellationToken cancellationToken) =>
        UntilAsync(condition, bound, () => what, cancellationToken);

    /// <summary>As above, with a description made when it fails (for example with the services' logs by then).</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan bound, Func<string> what, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + bound;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Not within {bound}: {what()}");
            }

            await Task.Delay(50, cancellationToken);
        }
    }
}
