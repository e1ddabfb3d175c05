using VixAspire.Bench.Baseline;

var builder = WebApplication.CreateBuilder(args);
builder.Services.AddBaselineStreaming();

var app = builder.Build();
app.MapGet("/health", () => "Healthy");
app.MapBaselineStream();

app.Run();
