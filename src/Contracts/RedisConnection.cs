namespace VixAspire.Contracts;

/// <summary>
/// The Redis resource's name in the AppHost, and so the connection string every service reads
/// (<c>ConnectionStrings:redis</c>, <c>ConnectionStrings__redis</c> in deploy/).
/// </summary>
public static class RedisConnection
{
    public const string Name = "redis";
}
