-- aqueue.http (to be written)
return {}
