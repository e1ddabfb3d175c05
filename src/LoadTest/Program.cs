using VixAspire.LoadTest;

return await LoadTestCommand.InvokeAsync(args);
