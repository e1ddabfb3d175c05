using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace VixAspire.Gateway;

/// <summary>
/// The API keys of <c>Gateway:ApiKeys:&lt;name&gt;</c>: each value is the key itself or <c>sha256:&lt;hex&gt;</c>
/// of it, so that configuration need not hold the secret. None configured: authentication is off.
/// </summary>
public sealed partial class ApiKeyOptions : AuthenticationSchemeOptions
{
    public const string SectionName = "Gateway:ApiKeys";

    public const string HashPrefix = "sha256:";

    /// <summary>Key name (the client's identity, forwarded as <c>X-Vix-Client</c>) → key or <c>sha256:</c> hash.</summary>
    public Dictionary<string, string> Keys { get; } = new(StringComparer.OrdinalIgnoreCase);

    internal IReadOnlyList<(string Name, byte[] Hash)> Hashes { get; private set; } = [];

    public bool Enabled => Keys.Count > 0;

    internal IEnumerable<string> Errors()
    {
        foreach (var (name, value) in Keys)
        {
            if (!ValidName().IsMatch(name))
            {
                yield return $"{SectionName}: the key name '{name}' may hold only letters, digits, '.', '_' and '-' (it travels in a header).";
            }

            if (string.IsNullOrEmpty(value))
            {
                yield return $"{SectionName}:{name} is empty.";
            }
            else if (value.StartsWith(HashPrefix, StringComparison.OrdinalIgnoreCase) && ParseHash(value) is null)
            {
                yield return $"{SectionName}:{name} must be '{HashPrefix}' and 64 hexadecimal digits.";
            }
        }
    }

    /// <summary>Hashes every key once, at configuration time; requests only hash the key they present.</summary>
    internal void ComputeHashes() =>
        Hashes = [.. Keys.Where(k => !string.IsNullOrEmpty(k.Value))
            .Select(k => (k.Key, k.Value.StartsWith(HashPrefix, StringComparison.OrdinalIgnoreCase) ? ParseHash(k.Value) : Hash(k.Value)))
            .Where(k => k.Item2 is not null)
            .Select(k => (k.Key, k.Item2!))];

    internal static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    private static byte[]? ParseHash(string value)
    {
        var hex = value.AsSpan(HashPrefix.Length);
        if (hex.Length != SHA256.HashSizeInBytes * 2)
        {
            return null;
        }

        try
        {
            return Convert.FromHexString(hex);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{1,64}$")]
    private static partial Regex ValidName();
}

/// <summary>
/// Authenticates <c>Authorization: Bearer &lt;key&gt;</c> or <c>api-key: &lt;key&gt;</c> (the header of OpenAI's and
/// Azure OpenAI's clients) against the configured keys: the presented key's SHA-256 is compared in constant time
/// with every configured hash, so neither a match nor its position shows in the timing. The principal's name is
/// the key's name; the key itself is never logged.
/// </summary>
internal sealed class ApiKeyHandler(IOptionsMonitor<ApiKeyOptions> options, ILoggerFactory loggerFactory, UrlEncoder encoder)
    : AuthenticationHandler<ApiKeyOptions>(options, loggerFactory, encoder)
{
    public const string SchemeName = "ApiKey";

    public const string ApiKeyHeader = "api-key";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (!Options.Enabled || PresentedKey(Request) is not { } presented)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var hash = ApiKeyOptions.Hash(presented);
        string? name = null;
        foreach (var key in Options.Hashes)
        {
            if (CryptographicOperations.FixedTimeEquals(hash, key.Hash))
            {
                name ??= key.Name;
            }
        }

        if (name is null)
        {
            Log.ApiKeyRejected(Logger, Request.Path);
            return Task.FromResult(AuthenticateResult.Fail("The API key is not valid."));
        }

        Log.ClientAuthenticated(Logger, name);
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, name)], Scheme.Name);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name)));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var result = await HandleAuthenticateOnceSafeAsync();
        Response.Headers.WWWAuthenticate = "Bearer";
        await GatewayErrors.WriteAsync(Context, result.Failure is null ? GatewayError.MissingKey : GatewayError.InvalidKey);
    }

    private static string? PresentedKey(HttpRequest request)
    {
        var authorization = request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return authorization["Bearer ".Length..].Trim() is { Length: > 0 } bearer ? bearer : null;
        }

        return request.Headers[ApiKeyHeader].ToString().Trim() is { Length: > 0 } key ? key : null;
    }
}

/// <summary>Met by a request authenticated with a key, or by any request while no keys are configured.</summary>
internal sealed class ApiKeyRequirement : AuthorizationHandler<ApiKeyRequirement>, IAuthorizationRequirement
{
    public const string PolicyName = "api-key";

    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, ApiKeyRequirement requirement)
    {
        var keys = context.Resource is HttpContext http
            ? http.RequestServices.GetRequiredService<IOptionsMonitor<ApiKeyOptions>>().Get(ApiKeyHandler.SchemeName)
            : null;
        if (keys is { Enabled: false } || context.User.Identities.Any(i => i.AuthenticationType == ApiKeyHandler.SchemeName && i.IsAuthenticated))
        {
            context.Succeed(requirement);
        }

        return Task.CompletedTask;
    }
}

internal sealed class ApiKeyOptionsValidator : IValidateOptions<ApiKeyOptions>
{
    public ValidateOptionsResult Validate(string? name, ApiKeyOptions options) =>
        options.Errors().ToList() is { Count: > 0 } errors ? ValidateOptionsResult.Fail(errors) : ValidateOptionsResult.Success;
}

internal static class ApiKeyAuthenticationExtensions
{
    /// <summary>The scheme, and the policy the proxied routes name in their <c>AuthorizationPolicy</c>.</summary>
    public static IServiceCollection AddApiKeyAuthentication(this IServiceCollection services)
    {
        services.AddAuthentication(ApiKeyHandler.SchemeName)
            .AddScheme<ApiKeyOptions, ApiKeyHandler>(ApiKeyHandler.SchemeName, null);
        services.AddOptions<ApiKeyOptions>(ApiKeyHandler.SchemeName)
            .Configure<IConfiguration>((options, configuration) => configuration.GetSection(ApiKeyOptions.SectionName).Bind(options.Keys))
            .PostConfigure(options => options.ComputeHashes())
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<ApiKeyOptions>, ApiKeyOptionsValidator>();
        services.AddAuthorizationBuilder()
            .AddPolicy(ApiKeyRequirement.PolicyName, policy => policy
                .AddAuthenticationSchemes(ApiKeyHandler.SchemeName)
                .AddRequirements(new ApiKeyRequirement()));
        return services;
    }
}
